import { closeSync, createWriteStream, fchownSync, fstatSync, openSync } from 'node:fs'
import { posix } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fsHttpError } from '../fs-errors.js'
import { ensureDirs, envdIsRoot } from '../owned-dirs.js'
import type { User } from '../users.js'
import { writeMetadata } from '../util/xattr.js'

export class UploadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/**
 * Writes one uploaded file as E2B envd does: as root, anywhere, creating
 * missing parent directories; the file (created 0644, or truncated) and the
 * directories made for it belong to `user`. The body streams into the
 * descriptor.
 */
export async function writeUpload(
  user: User,
  path: string,
  body: Readable,
  metadata: Record<string, string>,
): Promise<void> {
  let fd: number
  try {
    ensureDirs(posix.dirname(path), user)
    fd = openSync(path, 'w', 0o644)
  } catch (err) {
    body.resume()
    if ((err as { code?: string }).code === 'EISDIR')
      throw new UploadError(400, `path is a directory: ${path}`)
    const e = fsHttpError(err, `open '${path}'`)
    throw new UploadError(e.status, e.message)
  }
  try {
    if (fstatSync(fd).isDirectory()) throw new UploadError(400, `path is a directory: ${path}`)
    // Ownership goes to the writer, an existing file's too (as in E2B).
    if (envdIsRoot()) fchownSync(fd, user.uid, user.gid)
  } catch (err) {
    closeSync(fd)
    body.resume()
    if (err instanceof UploadError) throw err
    const e = fsHttpError(err, `chown '${path}'`)
    throw new UploadError(e.status, e.message)
  }
  try {
    await pipeline(body, createWriteStream('', { fd, autoClose: true }))
  } catch (err) {
    if (String((err as { code?: unknown }).code).startsWith('Z_')) {
      throw new UploadError(400, 'error decompressing request body: invalid gzip data')
    }
    const e = fsHttpError(err, `write '${path}'`)
    throw new UploadError(e.status, e.message)
  }
  try {
    writeMetadata(path, metadata)
  } catch (err) {
    const e = fsHttpError(err, `set metadata on '${path}'`)
    throw new UploadError(e.status, e.message)
  }
}
