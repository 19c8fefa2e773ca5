import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import {
  describeContentIssue,
  type Logger,
  parseVolumeContentPath,
  tokenSha256,
  toWarrenError,
  volumeContentOp,
  volumeContentQueries,
  volumeMetadataBody,
  volumePathSegments,
  WarrenError,
} from '@warren/shared'
import type { z } from 'zod'
import { volumePaths } from '../record.js'
import type { VolumeRegistry } from '../registry.js'
import type { VolumeScope } from './entry.js'
import { listDir } from './list-dir.js'
import { makeDir } from './make-dir.js'
import { openFile } from './read-file.js'
import { removeEntry } from './remove.js'
import { statEntry } from './stat.js'
import { updateMetadata } from './update-metadata.js'
import { writeFile } from './write-file.js'

export interface VolumeContentDeps {
  volumes: VolumeRegistry
  dataDir: string
  uidBase: number
  log: Logger
}

/**
 * E2B's volume content API on the node, where the files are:
 * `/volumecontent/{volumeID}/{dir|path|file}`. The API authenticates the
 * caller and streams the request here; this port checks again that the
 * request carries the volume's own token (a bearer token whose sha256 the
 * node keeps), so reaching the node directly gives no more than the token
 * already does. Answers are JSON entries or the file's bytes; errors are
 * `{code, message}`.
 */
export function volumeContentHandler(deps: VolumeContentDeps) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    serve(deps, req, res).catch((err: unknown) => {
      const w = toWarrenError(err)
      if (w.code === 'internal') deps.log.error({ err: w.cause ?? err }, 'volume content failed')
      // The rest of an unread body is read and dropped, so that the answer
      // gets through; the connection ends after it (its state is unknown).
      if (!req.complete) res.shouldKeepAlive = false
      sendError(res, w)
      req.resume()
    })
  }
}

async function serve(deps: VolumeContentDeps, req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://node')
  const target = parseVolumeContentPath(url.pathname)
  const op = target && volumeContentOp(req.method ?? 'GET', target.segment)
  if (!target || !op) throw new WarrenError('not_found', `no route ${req.method} ${url.pathname}`)
  const volume = deps.volumes.ready(target.volumeId)
  if (!volume) throw new WarrenError('not_found', `volume ${target.volumeId} not found`)
  const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]
  if (!token)
    throw new WarrenError('unauthenticated', 'missing volume token (Authorization: Bearer)')
  const want = Buffer.from(volume.tokenSha256, 'hex')
  if (!timingSafeEqual(Buffer.from(tokenSha256(token), 'hex'), want))
    throw new WarrenError('unauthenticated', 'invalid volume token')

  const scope: VolumeScope = {
    root: volumePaths(deps.dataDir, volume.volumeId).root,
    uidBase: deps.uidBase,
  }
  const raw = Object.fromEntries(url.searchParams)
  // Each operation's own parameters: unknown ones are refused (400).
  const query = <S extends z.ZodType<{ path: string }>>(schema: S) => {
    const q = parse(schema, raw)
    return { q, names: volumePathSegments(q.path) }
  }
  switch (op) {
    case 'listDir': {
      const { q, names } = query(volumeContentQueries.listDir)
      return sendJson(res, 200, await listDir(scope, names, q.depth ?? 1))
    }
    case 'makeDir': {
      const { q, names } = query(volumeContentQueries.makeDir)
      return sendJson(res, 201, await makeDir(scope, names, q))
    }
    case 'stat':
      return sendJson(res, 200, await statEntry(scope, query(volumeContentQueries.stat).names))
    case 'updateMetadata': {
      const { names } = query(volumeContentQueries.updateMetadata)
      const body = parse(volumeMetadataBody, await readJson(req))
      return sendJson(res, 200, await updateMetadata(scope, names, body))
    }
    case 'remove':
      await removeEntry(scope, query(volumeContentQueries.remove).names)
      res.writeHead(204).end()
      return
    case 'readFile': {
      const { file, size } = await openFile(scope, query(volumeContentQueries.readFile).names)
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(size),
      })
      // A client that goes away ends the stream, which closes the file.
      await pipeline(file.createReadStream(), res).catch(() => {})
      return
    }
    case 'writeFile': {
      const { q, names } = query(volumeContentQueries.writeFile)
      return sendJson(res, 200, await writeFile(scope, names, q, req))
    }
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value)
  if (!r.success) throw new WarrenError('invalid_argument', describeContentIssue(r.error))
  return r.data
}

const MAX_JSON_BYTES = 4096

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_JSON_BYTES) throw new WarrenError('invalid_argument', 'body too large')
    chunks.push(chunk as Buffer)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
  } catch {
    throw new WarrenError('invalid_argument', 'body: invalid JSON')
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

function sendError(res: ServerResponse, e: WarrenError): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const message = e.code === 'internal' ? 'internal error' : e.message
  sendJson(res, e.status, { code: e.status, message })
}
