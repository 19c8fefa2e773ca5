import type { OnReadOpts, Socket } from 'node:net'

/** A read's room while the peer is ahead: fewer, larger chunks. */
const LARGE = 1 << 20
/** A read's room otherwise (an idle or interactive connection pins no more than this). */
const SMALL = 16 << 10
/** A slab with less room than this left (or a quarter of a small one) is replaced. */
const MIN_READ = 64 << 10
/** Large slabs whose chunks were all released, kept for reuse while the peer is ahead. */
const SPARE_SLABS = 4

interface Slab {
  buf: Buffer
  used: number
  /** Chunks handed out and not yet released. */
  pending: number
  /** Replaced as the slab reads go to: reusable once `pending` is 0. */
  retired: boolean
}

/** Where a relay's chunks go: false pauses the socket; `release` once the chunk's bytes are written. */
export type BulkSink = (chunk: Buffer, release: () => void) => boolean

/**
 * Large reads for a socket that only relays bytes, from reused memory.
 * Node reads a socket at most 64 KiB at a time, each read a new allocation
 * (and in a process with a large heap, every few dozen MiB of them a full
 * garbage collection) and a callback. Here, once a read fills all the room
 * it was given (the peer is ahead), reads take up to 1 MiB (what the kernel
 * holds: far fewer reads, writes and wake-ups of the next hop) into large
 * slabs; a read that comes in small goes back to a 16 KiB slab, and the
 * large ones are left to the garbage collector. Each chunk is a view of its
 * slab that no later read overwrites until the chunk is released; a large
 * slab whose chunks are all released is read into again instead of
 * allocating another.
 *
 * `onread` goes to `net.connect`; `start` names where the chunks go. A sink
 * returning false pauses the socket until `socket.resume()`. Chunks read
 * before `start` wait for it (the socket paused after the first). A chunk
 * never released (its connection destroyed mid-write) only keeps its slab
 * from reuse.
 */
export interface BulkReads {
  onread: OnReadOpts
  start(socket: Socket, sink: BulkSink): void
}

export function bulkReads(): BulkReads {
  const spare: Slab[] = []
  const fresh = (size: number): Slab => ({
    buf: Buffer.allocUnsafe(size),
    used: 0,
    pending: 0,
    retired: false,
  })
  let ahead = false
  let slab = fresh(SMALL)
  let sink: BulkSink | undefined
  let early: [Buffer, () => void][] = []

  const recycle = (s: Slab) => {
    if (!ahead || s.buf.length !== LARGE || spare.length >= SPARE_SLABS) return
    s.used = 0
    s.retired = false
    spare.push(s)
  }
  const releaser = (s: Slab) => {
    let released = false
    return () => {
      if (released) return
      released = true
      if (--s.pending === 0 && s.retired) recycle(s)
    }
  }

  return {
    onread: {
      // Called for the first read, then after each chunk is taken.
      buffer: () => {
        const size = ahead ? LARGE : SMALL
        const room = slab.buf.length - slab.used
        if (slab.buf.length !== size || room < Math.min(MIN_READ, size / 4)) {
          slab.retired = true
          if (slab.pending === 0) recycle(slab)
          slab = (ahead && spare.pop()) || fresh(size)
        }
        return slab.buf.subarray(slab.used)
      },
      // `buf` is the current slab's free part, handed out by `buffer` just before.
      callback: (n, buf) => {
        if (n === buf.length) ahead = true
        else if (n < SMALL) {
          ahead = false
          spare.length = 0
        }
        const chunk = (buf as Buffer).subarray(0, n)
        slab.used += n
        slab.pending++
        const release = releaser(slab)
        if (sink) return sink(chunk, release)
        early.push([chunk, release])
        return false
      },
    },
    start(socket, to) {
      sink = to
      const queued = early
      early = []
      let flowing = true
      for (const [chunk, release] of queued) flowing = to(chunk, release)
      if (flowing) socket.resume()
    },
  }
}
