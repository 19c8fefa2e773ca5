import type { Socket } from 'node:net'
import type { BulkReads } from '@warren/shared/proxy/bulk-reads'
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
 * socket, with backpressure both ways. TCP is read through `reads` (the
 * socket dialed with its `onread`): one binary frame per read, up to 1 MiB,
 * so a fast server costs few frames and writes. When one side ends, what it sent is
 * still delivered and the other side is closed right after (forced after
 * `pongTimeoutMs` if its peer does not cooperate). When TCP ends, the
 * WebSocket is closed once all TCP sent has left for its socket, a slow
 * reader being kept (and pinged) until then, not cut mid-stream; an error or a ping left
 * unanswered for `pongTimeoutMs` after it was written destroys both at once
 * (data from the peer answers a ping too; a WebSocket paused for TCP's
 * backpressure is not pinged, its pongs being unread). Every timer is
 * cleared once both sockets are closed.
 */
export function relay(ws: WebSocket, tcp: Socket, reads: BulkReads, opts: RelayOptions): void {
  let wsClosed = false
  let tcpClosed = false
  let stopping = false
  let pongTimer: NodeJS.Timeout | undefined
  // A ping sent and not yet answered; its timer starts once the frame left
  // for the socket, not when it was queued behind data the peer is reading.
  let awaitingPong = false
  const forceTimers: NodeJS.Timeout[] = []

  const pingTimer = setInterval(() => {
    // While the WebSocket is paused (TCP's backpressure) its pongs cannot be
    // read: a peer we do not listen to is not judged.
    if (awaitingPong || ws.isPaused) return
    awaitingPong = true
    try {
      ws.ping(undefined, undefined, (err) => {
        if (err) return destroyBoth()
        if (awaitingPong && !stopping)
          pongTimer = setTimeout(() => destroyBoth(), opts.pongTimeoutMs)
      })
    } catch {
      destroyBoth()
    }
  }, opts.pingIntervalMs)

  /** The peer was heard from (a pong or data), or can no longer be heard (paused). */
  function heard(): void {
    awaitingPong = false
    clearTimeout(pongTimer)
    pongTimer = undefined
  }

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

  ws.on('pong', heard)

  // Paused by the sink's false (not by tcp.pause()): isPaused() does not see it.
  let tcpPaused = false
  /** Frames handed to `ws` and not yet written to its socket. */
  let unsent = 0
  /** TCP has ended: close the WebSocket once `unsent` is 0. */
  let closeWhenSent = false
  reads.start(tcp, (chunk, release) => {
    unsent++
    ws.send(chunk, { binary: true }, () => {
      release()
      if (--unsent === 0 && closeWhenSent) {
        closeWhenSent = false
        closeAfterTcp()
      }
      if (tcpPaused && ws.bufferedAmount < LOW_WATER) {
        tcpPaused = false
        tcp.resume()
      }
    })
    if (ws.bufferedAmount > HIGH_WATER) tcpPaused = true
    return !tcpPaused
  })
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    heard()
    // A Buffer (ws's default binaryType) goes as it is: Buffer.from would copy it.
    const buf = Buffer.isBuffer(data)
      ? data
      : Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.from(data)
    if (!tcp.write(buf)) ws.pause()
  })
  tcp.on('drain', () => ws.resume())

  // TCP peer finished: the close frame follows the data, once all of it has
  // left for the socket. Closing earlier would start ws's and our timers to
  // cut the connection while a slow reader is still taking that data (up to
  // the 4 MiB high-water mark); until then the keepalive goes on judging it.
  function closeAfterTcp(): void {
    if (!stopping) stopKeepalive()
    if (ws.readyState === ws.OPEN) {
      ws.close(1000)
      force(() => ws.terminate())
    }
  }
  tcp.on('close', () => {
    tcpClosed = true
    if (unsent > 0 && ws.readyState === ws.OPEN) closeWhenSent = true
    else closeAfterTcp()
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
