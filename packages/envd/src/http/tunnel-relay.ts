import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'

/** Above this much unsent WebSocket data the TCP side is paused; below the low mark it resumes. */
const HIGH_WATER = 4 << 20
const LOW_WATER = 1 << 20

export interface RelayOptions {
  pingIntervalMs: number
  pongTimeoutMs: number
  onClose?: () => void
}

/**
 * A verbatim byte relay between a WebSocket (binary frames) and a TCP
 * socket, with backpressure both ways. When one side ends, what it sent is
 * still delivered and the other side is closed right after (forced after
 * `pongTimeoutMs` if its peer does not cooperate); an error or a ping left
 * unanswered for `pongTimeoutMs` destroys both at once. Every timer is
 * cleared once both sockets are closed.
 */
export function relay(ws: WebSocket, tcp: Socket, opts: RelayOptions): void {
  let wsClosed = false
  let tcpClosed = false
  let stopping = false
  let pongTimer: NodeJS.Timeout | undefined
  const forceTimers: NodeJS.Timeout[] = []

  const pingTimer = setInterval(() => {
    if (pongTimer) return
    pongTimer = setTimeout(() => destroyBoth(), opts.pongTimeoutMs)
    try {
      ws.ping()
    } catch {
      destroyBoth()
    }
  }, opts.pingIntervalMs)

  function stopKeepalive(): void {
    stopping = true
    clearInterval(pingTimer)
    clearTimeout(pongTimer)
  }

  function force(fn: () => void): void {
    forceTimers.push(setTimeout(fn, opts.pongTimeoutMs))
  }

  function destroyBoth(): void {
    stopKeepalive()
    ws.terminate()
    tcp.destroy()
  }

  function closed(): void {
    if (!wsClosed || !tcpClosed) return
    stopKeepalive()
    for (const t of forceTimers) clearTimeout(t)
    opts.onClose?.()
  }

  ws.on('pong', () => {
    clearTimeout(pongTimer)
    pongTimer = undefined
  })

  tcp.on('data', (chunk: Buffer) => {
    ws.send(chunk, { binary: true }, () => {
      if (tcp.isPaused() && ws.bufferedAmount < LOW_WATER) tcp.resume()
    })
    if (ws.bufferedAmount > HIGH_WATER) tcp.pause()
  })
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)
    if (!tcp.write(buf)) ws.pause()
  })
  tcp.on('drain', () => ws.resume())

  // TCP peer finished: the close frame follows the data already queued.
  tcp.on('close', () => {
    tcpClosed = true
    if (!stopping) stopKeepalive()
    if (ws.readyState === ws.OPEN) {
      ws.close(1000)
      force(() => ws.terminate())
    }
    closed()
  })
  tcp.on('error', () => {
    ws.readyState === ws.OPEN ? ws.close(1011) : ws.terminate()
    force(() => ws.terminate())
  })
  // WebSocket peer finished: flush what it sent into TCP, then close TCP.
  ws.on('close', () => {
    wsClosed = true
    if (!stopping) stopKeepalive()
    if (!tcpClosed) {
      tcp.end()
      force(() => tcp.destroy())
    }
    closed()
  })
  ws.on('error', () => destroyBoth())
}
