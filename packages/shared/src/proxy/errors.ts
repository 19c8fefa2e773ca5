import {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http'
import type { Duplex } from 'node:stream'

/** The proxies' error body, as E2B's: `{sandboxId, message, code[, port]}`. */
export interface ProxyError {
  status: number
  message: string
  sandboxId?: string | undefined
  port?: number | undefined
  /** Seconds, for 503 while a sandbox is between states. */
  retryAfter?: number | undefined
  headers?: Record<string, string>
}

function body(e: ProxyError) {
  return {
    ...(e.sandboxId ? { sandboxId: e.sandboxId } : {}),
    message: e.message,
    code: e.status,
    ...(e.port ? { port: e.port } : {}),
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** The error's status, headers and body: JSON for programs, a small page for browsers (they ask for text/html). */
function errorAnswer(e: ProxyError, wantsHtml: boolean) {
  const headers: Record<string, string> = { ...e.headers, 'cache-control': 'no-store' }
  if (e.retryAfter !== undefined) headers['retry-after'] = String(e.retryAfter)
  if (!wantsHtml) {
    headers['content-type'] = 'application/json'
    return { headers, body: JSON.stringify(body(e)) }
  }
  const title = escapeHtml(e.message)
  const detail = e.sandboxId
    ? `<p>Sandbox <code>${escapeHtml(e.sandboxId)}</code>${e.port ? `, port ${e.port}` : ''}.</p>`
    : ''
  headers['content-type'] = 'text/html; charset=utf-8'
  return {
    headers,
    body: `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${e.status}</h1><p>${title}</p>${detail}</body></html>\n`,
  }
}

/** Whether the client asked for a page rather than JSON. */
export function wantsHtml(headers: IncomingHttpHeaders): boolean {
  return (headers.accept ?? '').includes('text/html')
}

export function sendProxyError(req: IncomingMessage, res: ServerResponse, e: ProxyError): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const { headers, body } = errorAnswer(e, wantsHtml(req.headers))
  res.writeHead(e.status, headers)
  res.end(body)
}

/** The error as a whole HTTP/1.1 response, for a connection no HTTP server writes on. */
export function rawProxyError(e: ProxyError, html: boolean, keepAlive: boolean): string {
  const { headers, body } = errorAnswer(e, html)
  let head = `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\n`
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`
  head += `content-length: ${Buffer.byteLength(body)}\r\nconnection: ${keepAlive ? 'keep-alive' : 'close'}\r\n\r\n`
  return head + body
}

/** The same error on a socket whose request asked for an upgrade. */
export function sendProxyErrorOnSocket(socket: Duplex, e: ProxyError): void {
  socket.end(rawProxyError(e, false, false))
}
