import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { WarrenError } from '@warren/shared'
import { readOrCreatePrivateFile } from '@warren/shared/pki'
import type { Db } from '../store/db.js'

/** How long an upload or download link works. */
export const LINK_TTL_MS = 60 * 60 * 1000
/** The largest files archive one COPY step may upload. */
export const MAX_UPLOAD_BYTES = 2 * 2 ** 30

export const FILES_HASH = /^[0-9a-f]{64}$/

export type LinkOp = 'put' | 'get'

/**
 * COPY steps' files archives, kept per team by the client's files hash
 * under `<dataDir>/template-files/<team>/<hash>.tar`, and the signed links
 * that move them: the SDK PUTs an archive to its upload link; a node GETs it
 * with its download link. A link is authenticated by its HMAC signature
 * (operation, team, hash, expiry) with a key only this API holds.
 */
export class TemplateFiles {
  private readonly key: Buffer

  constructor(private readonly dataDir: string) {
    this.key = loadKey(join(dataDir, 'template-files.key'))
  }

  path(teamId: string, hash: string): string {
    return join(this.dataDir, 'template-files', teamId, `${hash}.tar`)
  }

  async present(db: Db, teamId: string, hash: string): Promise<boolean> {
    const row = await db
      .selectFrom('template_files')
      .select('hash')
      .where('team_id', '=', teamId)
      .where('hash', '=', hash)
      .executeTakeFirst()
    return !!row && existsSync(this.path(teamId, hash))
  }

  /** `/template-files/<team>/<hash>?op&exp&sig` on `base`. */
  link(base: string, op: LinkOp, teamId: string, hash: string, now: number): string {
    const exp = now + LINK_TTL_MS
    const sig = this.sign(op, teamId, hash, exp)
    return `${base}/template-files/${teamId}/${hash}?op=${op}&exp=${exp}&sig=${sig}`
  }

  /** Throws unless the link is this API's, for this operation, and unexpired. */
  verify(
    op: LinkOp,
    teamId: string,
    hash: string,
    q: { op?: string; exp?: string; sig?: string },
    now: number,
  ): void {
    const exp = Number(q.exp)
    const expected = Buffer.from(this.sign(op, teamId, hash, exp))
    const given = Buffer.from(q.sig ?? '')
    if (
      q.op !== op ||
      given.length !== expected.length ||
      !timingSafeEqual(given, expected) ||
      !Number.isFinite(exp)
    ) {
      throw new WarrenError('forbidden', 'invalid file link signature')
    }
    if (exp < now) throw new WarrenError('forbidden', 'the file link has expired')
  }

  /**
   * Stores an upload of exactly `length` bytes (the request's
   * Content-Length), published with a rename once complete, then recorded.
   */
  async store(
    db: Db,
    teamId: string,
    hash: string,
    body: ReadableStream<Uint8Array>,
    length: number,
    now: number,
  ): Promise<void> {
    const target = this.path(teamId, hash)
    mkdirSync(join(this.dataDir, 'template-files', teamId), { recursive: true, mode: 0o700 })
    const tmp = `${target}.${randomBytes(6).toString('hex')}.part`
    let received = 0
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        received += chunk.length
        if (received > length)
          done(new WarrenError('invalid_argument', 'the body is longer than its Content-Length'))
        else done(null, chunk)
      },
    })
    try {
      await pipeline(
        Readable.fromWeb(body as never),
        count,
        createWriteStream(tmp, { mode: 0o600 }),
      )
      if (received !== length)
        throw new WarrenError('invalid_argument', `received ${received} of ${length} bytes`)
      renameSync(tmp, target)
    } finally {
      rmSync(tmp, { force: true })
    }
    await db
      .insertInto('template_files')
      .values({ team_id: teamId, hash, size: length, created_at: now })
      .onConflict((oc) =>
        oc.columns(['team_id', 'hash']).doUpdateSet({ size: length, created_at: now }),
      )
      .execute()
  }

  private sign(op: LinkOp, teamId: string, hash: string, exp: number): string {
    return createHmac('sha256', this.key)
      .update(`${op}:${teamId}:${hash}:${exp}`)
      .digest('base64url')
  }
}

/** The signing key, made once (API replicas on one data directory share it) and readable by root only. */
function loadKey(path: string): Buffer {
  return Buffer.from(
    readOrCreatePrivateFile(path, () => randomBytes(32).toString('hex')).trim(),
    'hex',
  )
}
