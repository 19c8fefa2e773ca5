import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { resolvePath } from '../paths.js'
import type { EnvdState } from '../state.js'
import type { User } from '../users.js'
import { filesAccess } from './files-access.js'
import { sendError, sendJson } from './respond.js'
import { UploadError, writeUpload } from './upload-file.js'
import { uploadMetadata } from './upload-metadata.js'

interface Written {
  name: string
  type: 'file'
  path: string
  metadata?: Record<string, string>
}

function written(path: string, metadata: Record<string, string>): Written {
  const entry: Written = { name: path.slice(path.lastIndexOf('/') + 1), type: 'file', path }
  if (Object.keys(metadata).length > 0) entry.metadata = metadata
  return entry
}

/** A multipart body: every `file` part is written in order, to `?path` or to its filename. */
async function multipart(
  req: IncomingMessage,
  body: Readable,
  user: User,
  path: string | undefined,
  state: EnvdState,
  metadata: Record<string, string>,
): Promise<Written[]> {
  const { default: busboy } = await import('busboy')
  // preservePath: the SDK sends the full destination path as the filename.
  const parser = busboy({ headers: req.headers, preservePath: true })
  const out: Written[] = []
  let chain = Promise.resolve()
  let failure: unknown
  await new Promise<void>((resolve, reject) => {
    parser.on('file', (field, stream, info) => {
      if (field !== 'file' || failure) {
        stream.resume()
        return
      }
      const target = path ?? resolvePath(info.filename ?? '', user.home, state.defaultWorkdir)
      if (out.some((w) => w.path === target)) {
        failure = new UploadError(
          400,
          `you cannot upload multiple files to the same path '${target}' in one request`,
        )
        stream.resume()
        return
      }
      out.push(written(target, metadata))
      // Files are written one after another; busboy waits while a part is unread.
      chain = chain
        .then(() => writeUpload(user, target, stream, metadata))
        .catch((err) => {
          failure ??= err
          stream.resume()
        })
    })
    parser.on('field', () => {})
    parser.on('error', reject)
    parser.on('close', () => resolve())
    body.on('error', reject)
    body.pipe(parser)
  }).catch((err) => {
    throw new UploadError(400, `error reading multipart body: ${(err as Error).message}`)
  })
  await chain
  if (failure) throw failure
  return out
}

/**
 * POST /files: multipart (several files) or application/octet-stream with
 * `?path`; the body may be gzip-encoded. Replies 200 with the written entries.
 */
export async function handleUpload(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  state: EnvdState,
): Promise<void> {
  const access = filesAccess(req, url, state, 'write')
  if (!access.ok) return sendError(res, access.status, access.message)
  const meta = uploadMetadata(req.headers)
  if (!meta.ok) return sendError(res, 400, meta.message)
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase()
  if (encoding !== 'identity' && encoding !== 'gzip') {
    return sendError(res, 400, `unsupported content encoding: ${encoding}`)
  }
  const body: Readable = encoding === 'gzip' ? req.pipe(createGunzip()) : req
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  try {
    let entries: Written[]
    if (type === 'application/octet-stream') {
      if (!access.path)
        return sendError(res, 400, 'path query parameter is required for raw body upload')
      await writeUpload(access.user, access.path, body, meta.metadata)
      entries = [written(access.path, meta.metadata)]
    } else if (type.startsWith('multipart/')) {
      entries = await multipart(req, body, access.user, access.path, state, meta.metadata)
    } else {
      return sendError(
        res,
        400,
        `unsupported content type: ${type || 'none'}, expected multipart/form-data or application/octet-stream`,
      )
    }
    sendJson(res, 200, entries)
  } catch (err) {
    if (!(err instanceof UploadError)) throw err
    // The rest of the body is not wanted; close the connection after replying.
    res.setHeader('connection', 'close')
    sendError(res, err.status, err.message)
  }
}
