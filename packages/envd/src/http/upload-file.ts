import { closeSync, createWriteStream, fstatSync, mkdirSync, openSync } from 'node:fs'
import { posix } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { asUser } from '../as-user.js'
import { fsHttpError } from '../fs-errors.js'
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
 * Writes one uploaded file: parents are created and the file opened (created
 * or truncated) with the user's identity, so it is theirs and only where they
 * may write; the body then streams into the descriptor.
 */
export async function writeUpload(
  user: User,
  path: string,
  body: Readable,
  metadata: Record<string, string>,
): Promise<void> {
  let fd: number
  try {
    fd = asUser(user, () => {
      mkdirSync(posix.dirname(path), { recursive: true })
      return openSync(path, 'w', 0o644)
    })
  } catch (err) {
    body.resume()
    const e = fsHttpError(err, `open '${path}'`)
    if ((err as { code?: string }).code === 'EISDIR')
      throw new UploadError(400, `path is a directory: ${path}`)
    throw new UploadError(e.status, e.message)
  }
  if (fstatSync(fd).isDirectory()) {
    closeSync(fd)
    throw new UploadError(400, `path is a directory: ${path}`)
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
    asUser(user, () => writeMetadata(path, metadata))
  } catch (err) {
    const e = fsHttpError(err, `set metadata on '${path}'`)
    throw new UploadError(e.status, e.message)
  }
}
