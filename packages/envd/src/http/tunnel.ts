import type { IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
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

function dial(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const tcp = connect({ host, port, noDelay: true })
    const timer = setTimeout(() => tcp.destroy(new Error('connect timeout')), DIAL_TIMEOUT_MS)
    tcp.once('connect', () => {
      clearTimeout(timer)
      tcp.removeAllListeners('error')
      resolve(tcp)
    })
    tcp.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

let wsModule: Promise<typeof import('ws')> | undefined

export interface TunnelOptions {
  state: EnvdState
  pingIntervalMs: number
  pongTimeoutMs: number
  /** Open relays, so shutdown can close them. */
  open: Set<() => void>
}

/**
 * GET /tunnel?host=&port= as a WebSocket carrying raw TCP to host:port as
 * seen from inside the sandbox. Parameters are checked and the TCP dial made
 * before the upgrade, so failures are ordinary HTTP answers (400, 401, 502).
 */
export async function handleTunnel(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  url: URL,
  opts: TunnelOptions,
): Promise<void> {
  socket.on('error', () => socket.destroy())
  if (!hasValidToken(opts.state.accessToken, req.headers[ACCESS_TOKEN_HEADER])) {
    return refuse(socket, 401, 'unauthorized access, please provide a valid access token')
  }
  const target = parseTunnelTarget(url.searchParams)
  if (!target.ok) return refuse(socket, 400, target.message)
  let tcp: Socket
  try {
    tcp = await dial(target.host, target.port)
  } catch (err) {
    return refuse(
      socket,
      502,
      `cannot connect to ${target.host}:${target.port}: ${(err as Error).message}`,
    )
  }
  if (socket.destroyed) {
    tcp.destroy()
    return
  }
  wsModule ??= import('ws')
  const { WebSocketServer: Server } = await wsModule
  const wss: WebSocketServer = new Server({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 64 << 20,
  })
  wss.handleUpgrade(req, socket, head, (ws) => {
    const close = () => ws.terminate()
    opts.open.add(close)
    log.info('tunnel opened', { host: target.host, port: target.port })
    relay(ws, tcp, {
      pingIntervalMs: opts.pingIntervalMs,
      pongTimeoutMs: opts.pongTimeoutMs,
      onClose: () => {
        opts.open.delete(close)
        log.info('tunnel closed', { host: target.host, port: target.port })
      },
    })
  })
}
