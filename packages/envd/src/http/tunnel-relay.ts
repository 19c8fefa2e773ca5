import type { Socket } from 'node:net'
import { adoptOnread } from '@warren/shared/proxy/accepted-reads'
import { type BulkReads, bulkReads } from '@warren/shared/proxy/bulk-reads'
import type { WebSocket } from 'ws'
import { ClientFrames } from './client-frames.js'

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
 * so a fast server costs few frames and writes. The client's frames are
 * read from the WebSocket's own socket (`socket`) by `ClientFrames`, not by
 * `ws`: large reads into reused memory where Node allows it
 * (`adoptOnread`), each data payload unmasked in place and written to TCP,
 * the memory read into again once TCP has taken it; pings are answered and
 * a close frame answered with the same code (`ws` still sends and pings).
 * When one side ends, what it sent is
 * still delivered and the other side is closed right after (forced after
 * `pongTimeoutMs` if its peer does not cooperate). When TCP ends, the
 * WebSocket is closed once all TCP sent has left for its socket, a slow
 * reader being kept (and pinged) until then, not cut mid-stream; an error or a ping left
 * unanswered for `pongTimeoutMs` after it was written destroys both at once
 * (data from the peer answers a ping too; a WebSocket paused for TCP's
 * backpressure is not pinged, its pongs being unread). Every timer is
 * cleared once both sockets are closed.
 */
export function relay(
  ws: WebSocket,
  socket: Socket,
  tcp: Socket,
  reads: BulkReads,
  opts: RelayOptions,
): void {
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
    if (awaitingPong || clientPaused) return
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
  // Paused by TCP's backpressure: its pongs cannot be read meanwhile.
  let clientPaused = false
  /** The write callback of the chunk being read, counting one more write holding it. */
  let holdChunk = () => () => {}
  let tcpFull = false
  const frames = new ClientFrames({
    data(bytes) {
      heard()
      if (!tcp.write(bytes, holdChunk())) tcpFull = true
    },
    ping(payload) {
      if (ws.readyState === ws.OPEN) ws.pong(payload)
    },
    pong: () => heard(),
    close(code) {
      // What the client sent before reaches TCP; the WebSocket's close ends TCP.
      if (ws.readyState === ws.OPEN) code === undefined ? ws.close() : ws.close(code)
      socket.end()
    },
    violation: () => destroyBoth(),
  })
  /** One chunk from the client through the frames; false pauses the socket until TCP drains. */
  const fromClient = (chunk: Buffer, release: () => void): boolean => {
    // Released (read into again) once every write of its payloads is done.
    let holding = 1
    const written = () => {
      if (--holding === 0) release()
    }
    holdChunk = () => {
      holding++
      return written
    }
    tcpFull = false
    frames.push(chunk)
    written()
    clientPaused = tcpFull
    return !tcpFull
  }
  // `ws` reads the socket no more: its 'data' listener goes.
  socket.removeAllListeners('data')
  const clientReads = bulkReads()
  const earlier = adoptOnread(socket, clientReads.onread)
  if (earlier) {
    for (const chunk of earlier) fromClient(chunk, () => {})
    clientReads.start(socket, fromClient)
  } else {
    socket.on('data', (chunk: Buffer) => {
      if (!fromClient(chunk, () => {})) socket.pause()
    })
  }
  tcp.on('drain', () => {
    if (!clientPaused) return
    clientPaused = false
    socket.resume()
  })

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
