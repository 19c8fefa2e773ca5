import type { OnReadOpts, Socket } from 'node:net'

/** The most one read may take: a relay moves fewer, larger chunks when the peer is ahead. */
const SLAB = 1 << 20
/** A slab with less room than this left is replaced by a fresh one. */
const MIN_READ = 64 << 10

/**
 * Large reads for a socket that only relays bytes. Node reads a socket at
 * most 64 KiB at a time, each read a new allocation and a callback; when
 * the peer writes faster than the relay forwards, reading up to 1 MiB at
 * once (what the kernel holds) moves the same bytes in far fewer reads,
 * writes and wake-ups of the next hop. Each chunk is a view of a shared
 * slab that is never written twice (a chunk still queued for writing stays
 * intact); a slab goes when the last of its chunks does.
 *
 * `onread` goes to `net.connect`; `start` names where the chunks go. A sink
 * returning false pauses the socket until `socket.resume()`. Chunks read
 * before `start` wait for it (the socket paused after the first).
 */
export interface BulkReads {
  onread: OnReadOpts
  start(socket: Socket, sink: (chunk: Buffer) => boolean): void
}

export function bulkReads(): BulkReads {
  let slab = Buffer.allocUnsafe(SLAB)
  let used = 0
  let sink: ((chunk: Buffer) => boolean) | undefined
  let early: Buffer[] = []
  return {
    onread: {
      // Called for the first read, then after each chunk is taken.
      buffer: () => {
        if (SLAB - used < MIN_READ) {
          slab = Buffer.allocUnsafe(SLAB)
          used = 0
        }
        return slab.subarray(used)
      },
      callback: (n, buf) => {
        const chunk = (buf as Buffer).subarray(0, n)
        used += n
        if (sink) return sink(chunk)
        early.push(chunk)
        return false
      },
    },
    start(socket, to) {
      sink = to
      const queued = early
      early = []
      let flowing = true
      for (const chunk of queued) flowing = to(chunk)
      if (flowing) socket.resume()
    },
  }
}
