import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { bulkReads } from '@warren/shared/proxy/bulk-reads'
import { dialOnce } from '@warren/shared/proxy/dial'
import type { WebSocketServer } from 'ws'
import { ACCESS_TOKEN_HEADER, hasValidToken } from '../auth.js'
import { log } from '../log.js'
import type { EnvdState } from '../state.js'
import { relay } from './tunnel-relay.js'
import { parseTunnelTarget } from './tunnel-target.js'

const DIAL_TIMEOUT_MS = 10_000

/** A plain HTTP reply on a socket that never got upgraded. */
function refuse(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ code: status, message })
  const reason =
    { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 502: 'Bad Gateway' }[status] ??
    'Error'
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  )
}

export interface TunnelOptions {
  state: EnvdState
  pingIntervalMs: number
  pongTimeoutMs: number
}

export interface Tunnels {
  handle(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void>
  /** Ends every open tunnel (shutdown). */
  closeAll(): void
}

/**
 * GET /tunnel?host=&port= as a WebSocket carrying raw TCP to host:port as
 * seen from inside the sandbox. Parameters are checked and the TCP dial made
 * before the upgrade, so failures are ordinary HTTP answers (400, 401, 502).
 */
export function createTunnels(opts: TunnelOptions): Tunnels {
  // One WebSocket server for every tunnel, loaded with the first one.
  let wss: WebSocketServer | undefined
  const server = async () => {
    if (!wss) {
      const { WebSocketServer: Server } = await import('ws')
      wss ??= new Server({ noServer: true, perMessageDeflate: false, maxPayload: 64 << 20 })
    }
    return wss
  }
  return {
    handle: (req, socket, head, url) => handle(req, socket, head, url, opts, server),
    closeAll: () => {
      for (const ws of wss?.clients ?? []) ws.terminate()
    },
  }
}

async function handle(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  url: URL,
  opts: TunnelOptions,
  server: () => Promise<WebSocketServer>,
): Promise<void> {
  socket.on('error', () => socket.destroy())
  if (!hasValidToken(opts.state.accessToken, req.headers[ACCESS_TOKEN_HEADER])) {
    return refuse(socket, 401, 'unauthorized access, please provide a valid access token')
  }
  const target = parseTunnelTarget(url.searchParams)
  if (!target.ok) return refuse(socket, 400, target.message)
  let tcp: Socket
  const reads = bulkReads()
  try {
    tcp = await dialOnce(target.host, target.port, DIAL_TIMEOUT_MS, reads.onread)
    tcp.setNoDelay(true)
  } catch (err) {
    return refuse(
      socket,
      502,
      `cannot connect to ${target.host}:${target.port}: ${(err as Error).message}`,
    )
  }
  const wss = await server()
  if (socket.destroyed) {
    tcp.destroy()
    return
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    log.info('tunnel opened', { host: target.host, port: target.port })
    relay(ws, socket as Socket, tcp, reads, {
      pingIntervalMs: opts.pingIntervalMs,
      pongTimeoutMs: opts.pongTimeoutMs,
      onClose: () => {
        log.info('tunnel closed', { host: target.host, port: target.port })
      },
    })
  })
}
