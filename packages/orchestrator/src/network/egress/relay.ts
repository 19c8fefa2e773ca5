import { connect, type Socket } from 'node:net'

/**
 * What one read may take. Large reads mean few syscalls per byte: in the
 * bench, 256 KiB reads took about half the CPU per GiB of Node's 64 KiB
 * ones, and 1 MiB did better again for HTTP (0.66× of direct against 0.51×,
 * medians of five runs). Only the pages a connection's largest read touched
 * are resident: a small request's link costs a few.
 */
export const RELAY_CHUNK = 1024 * 1024

/** Free relay buffers kept for the next connections (at most this many). */
const MAX_FREE = 16
const free: Buffer[] = []

/**
 * A relay buffer: a kept one when there is one. A fresh one per connection
 * would put 1 MiB of external memory on the orchestrator's heap for each
 * small request, the very churn that relays are meant to avoid.
 */
export function takeBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafe(RELAY_CHUNK)
}

/** Returns a buffer that no read fills and no write holds any more. */
export function giveBack(buffer: Buffer): void {
  if (free.length < MAX_FREE) free.push(buffer)
}

/** How many buffers are kept free (for tests). */
export function freeBuffers(): number {
  return free.length
}

/**
 * Dials `host:port` for a relay to `to`: every byte the dialled socket reads
 * lands in one buffer of its own and is written on to `to`. Node's default
 * reads allocate a fresh 64 KiB buffer each; at hundreds of MiB/s those
 * allocations set off a major GC of the whole orchestrator's heap every
 * 64 MiB or so, which was most of the egress proxy's CPU. Here nothing is
 * allocated per read: the buffer is read into again once the write of its
 * bytes has left it (at once when the kernel took them all; otherwise reading
 * pauses until that write is done, which is also the backpressure). The
 * socket ends `to` when it ends; errors are the caller's to handle.
 */
export function dialRelay(
  host: string,
  port: number,
  to: Socket,
  timeoutMs = 10_000,
): Promise<Socket> {
  const buffer = takeBuffer()
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({
      host,
      port,
      onread: {
        buffer,
        callback: (n: number, buf: Uint8Array) => {
          if (to.destroyed) return false
          to.write(buf.subarray(0, n), () => {
            if (held) {
              held = false
              socket.resume()
            }
          })
          // Still queued: the write holds the buffer, so no read may refill it
          // before the write's callback.
          if (to.writableLength > 0) held = true
          return !held
        },
      },
    })
    let held = false
    const onError = (err: Error) => {
      socket.destroy()
      reject(err)
    }
    socket.setTimeout(timeoutMs, () =>
      onError(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
    )
    socket.once('error', onError)
    socket.once('connect', () => {
      socket.setTimeout(0)
      socket.off('error', onError)
      resolve(socket)
    })
    socket.once('end', () => to.end())
    // Closed, no read fills the buffer; a write still holding it (the client
    // was destroyed with it) keeps it out of the pool.
    socket.once('close', () => {
      if (!held) giveBack(buffer)
    })
  })
}

/**
 * Joins a client to an upstream made by `dialRelay` for it: the client's
 * bytes are piped up (uploads allocate as Node does; downloads do not), and
 * either side ending or failing ends both.
 */
export function joinRelay(client: Socket, upstream: Socket): void {
  let closed = false
  const close = () => {
    if (closed) return
    closed = true
    client.destroy()
    upstream.destroy()
  }
  client.pipe(upstream)
  for (const s of [client, upstream]) {
    s.on('error', close)
    s.on('close', close)
  }
}
