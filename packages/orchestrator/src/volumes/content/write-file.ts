import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { open, rename, unlink } from 'node:fs/promises'
import type { Readable, Writable } from 'node:stream'
import { type VolumeEntryStat, WarrenError } from '@warren/shared'
import { displayPath, entryStat, hostOwner, type VolumeScope } from './entry.js'
import { at, errnoOf, fsError, lstatAt, walkDirs, withRoot } from './fs-at.js'

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants

export interface WriteOptions {
  uid?: number | undefined
  gid?: number | undefined
  mode?: number | undefined
}

/**
 * PUT file: the body, streamed into a new file beside the target, which
 * then replaces the target in one rename: readers see the old file or the
 * new one, never half of it, and a failed upload (the volume full, the
 * client gone) leaves the old file as it was. Missing parents are made,
 * owned like the file. The file is owned by `uid:gid` (default the
 * sandbox's user), mode 0644 unless given.
 */
export function writeFile(
  scope: VolumeScope,
  names: string[],
  opts: WriteOptions,
  body: Readable,
): Promise<VolumeEntryStat> {
  const where = displayPath(names)
  return withRoot(scope.root, async (root) => {
    if (!names.length) throw new WarrenError('conflict', '/: is a directory')
    const owner = hostOwner(scope, opts)
    const name = names.at(-1)!
    try {
      const parent = await walkDirs(root, names.slice(0, -1), { owner })
      try {
        const existing = await lstatAt(parent, name).catch((err: unknown) => {
          if (errnoOf(err) === 'ENOENT') return undefined
          throw err
        })
        if (existing?.isDirectory()) throw new WarrenError('conflict', `${where}: is a directory`)
        const temp = `.warren-upload-${randomBytes(8).toString('hex')}`
        const file = await open(at(parent, temp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        try {
          await file.chown(owner.uid, owner.gid)
          await file.chmod(opts.mode ?? 0o644)
          // The stream closes the handle when it ends or fails.
          await streamInto(body, file.createWriteStream())
          await rename(at(parent, temp), at(parent, name))
        } catch (err) {
          await file.close().catch(() => {})
          await unlink(at(parent, temp)).catch(() => {})
          throw err
        }
        return await entryStat(scope, await lstatAt(parent, name), names, parent)
      } finally {
        await parent.close()
      }
    } catch (err) {
      throw fsError(err, where)
    }
  })
}

/**
 * Pipes the body into the file until it ends. Unlike pipeline() it never
 * destroys the body on a failure (that would close the client's connection
 * before it hears why): the caller answers, then lets the rest drain.
 */
function streamInto(body: Readable, out: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failed = false
    const fail = (err: Error) => {
      if (failed) return
      failed = true
      body.unpipe(out)
      out.destroy()
      reject(err)
    }
    body.on('error', fail)
    body.on('close', () => {
      if (!body.readableEnded) fail(new WarrenError('invalid_argument', 'the upload was cut short'))
    })
    out.on('error', fail)
    // 'close' after 'finish': every byte written and the file closed.
    out.on('close', () => {
      if (!failed) resolve()
    })
    body.pipe(out)
  })
}
