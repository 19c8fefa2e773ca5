import type { IncomingMessage, ServerResponse } from 'node:http'
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

/** JSON for programs; a small page for browsers (they ask for text/html). */
export function sendProxyError(req: IncomingMessage, res: ServerResponse, e: ProxyError): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const headers: Record<string, string> = { ...e.headers, 'cache-control': 'no-store' }
  if (e.retryAfter !== undefined) headers['retry-after'] = String(e.retryAfter)
  const wantsHtml = (req.headers.accept ?? '').includes('text/html')
  if (wantsHtml) {
    const title = escapeHtml(e.message)
    const detail = e.sandboxId
      ? `<p>Sandbox <code>${escapeHtml(e.sandboxId)}</code>${e.port ? `, port ${e.port}` : ''}.</p>`
      : ''
    res.writeHead(e.status, { ...headers, 'content-type': 'text/html; charset=utf-8' })
    res.end(
      `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${e.status}</h1><p>${title}</p>${detail}</body></html>\n`,
    )
    return
  }
  res.writeHead(e.status, { ...headers, 'content-type': 'application/json' })
  res.end(JSON.stringify(body(e)))
}

/** The same error on a socket whose request asked for an upgrade. */
export function sendProxyErrorOnSocket(socket: Duplex, e: ProxyError): void {
  const payload = JSON.stringify(body(e))
  const extra = e.retryAfter !== undefined ? `Retry-After: ${e.retryAfter}\r\n` : ''
  socket.end(
    `HTTP/1.1 ${e.status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n${extra}Connection: close\r\n\r\n${payload}`,
  )
}
