import { closeSync, createReadStream, fstatSync, openSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { fsHttpError } from '../fs-errors.js'
import { resolvePath } from '../paths.js'
import type { EnvdState } from '../state.js'
import { filesAccess } from './files-access.js'
import { sendError } from './respond.js'

/** Accept-Encoding: gzip when gzip is acceptable (q > 0), identity otherwise. */
export function wantsGzip(header: string | undefined): boolean {
  if (!header) return false
  for (const part of header.split(',')) {
    const [coding, ...params] = part.trim().split(';')
    if (coding?.trim().toLowerCase() !== 'gzip') continue
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    return q === undefined || Number(q.slice(2)) > 0
  }
  return false
}

/**
 * GET /files: the file's raw bytes, streamed from the descriptor (never
 * buffered); gzip when asked. envd reads as root, as E2B's does: the user
 * only decides how a relative path resolves.
 */
export async function handleDownload(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  state: EnvdState,
): Promise<void> {
  const access = filesAccess(req, url, state, 'read')
  if (!access.ok) return sendError(res, access.status, access.message)
  const path = access.path ?? resolvePath('', access.user.home, state.defaultWorkdir)
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    const e = fsHttpError(err, `path '${path}'`)
    const message = e.status === 404 ? `path '${path}' does not exist` : e.message
    return sendError(res, e.status, message)
  }
  const st = fstatSync(fd)
  if (st.isDirectory()) {
    closeSync(fd)
    return sendError(res, 400, `path '${path}' is a directory`)
  }
  const stream = createReadStream('', { fd, autoClose: true })
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    vary: 'Accept-Encoding',
    'cache-control': 'no-store',
  }
  if (wantsGzip(req.headers['accept-encoding'])) {
    res.writeHead(200, { ...headers, 'content-encoding': 'gzip' })
    await pipeline(stream, createGzip(), res).catch(() => res.destroy())
    return
  }
  res.writeHead(200, { ...headers, 'content-length': st.size })
  await pipeline(stream, res).catch(() => res.destroy())
}
