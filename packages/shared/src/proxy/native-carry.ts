import { createRequire } from 'node:module'
import type { Socket } from 'node:net'
import { join } from 'node:path'

interface Addon {
  init(onEnd: (id: number, carried: number, extra: number, errno: number) => void): void
  send(id: number, from: number, to: number, length: number, idleMs: number): boolean
  cancel(id: number): void
  count(): number
}

/**
 * How a carry ended: the bytes it moved, and the errno that ended it (0: it
 * finished; EPIPE: `from` ended before the length; ETIMEDOUT: nothing moved
 * for its idle time; another: a socket failed).
 */
export interface CarryEnd {
  carried: number
  /** For a carry that finished, the bytes `from` already holds past the length. */
  extra: number
  errno: number
}

/** A carry under way: `cancel` stops it (its end is then never told). */
export interface Carry {
  cancel(): void
}

/**
 * The process's kernel carries (native/carry.c): a known number of bytes
 * moves from one socket to another by splice(2) through a pipe, on this
 * process's own event loop, never copied through its memory. Each carry
 * works on its own duplicates of the sockets' descriptors; the Node sockets
 * stay the caller's (closing one and cancelling the carry closes its
 * connection).
 */
export class NativeCarry {
  private readonly ends = new Map<number, (end: CarryEnd) => void>()
  private nextId = 1

  constructor(private readonly addon: Addon) {
    addon.init((id, carried, extra, errno) => {
      const done = this.ends.get(id)
      this.ends.delete(id)
      done?.({ carried, extra, errno })
    })
  }

  /**
   * Carries exactly `length` bytes from `from` to `to`, then `done`; both
   * sockets stay Node's. `from` must not be reading (paused by its `onread`
   * callback) and hold nothing unread; `to` must hold nothing unsent, and
   * Node must not write to it before `done` (it may go on reading it).
   * Undefined (nothing changed) when these do not hold.
   */
  send(
    from: Socket,
    to: Socket,
    length: number,
    idleMs: number,
    done: (end: CarryEnd) => void,
  ): Carry | undefined {
    const reading = (from as unknown as { _handle?: { reading?: boolean } })._handle?.reading
    const ff = reading || from.readableLength > 0 ? undefined : socketFd(from)
    const ft = socketFd(to)
    if (ff === undefined || ft === undefined || to.writableLength > 0) return undefined
    const id = this.nextId++
    if (this.nextId > 0xffff_fff0) this.nextId = 1
    if (!this.addon.send(id, ff, ft, length, idleMs)) return undefined
    this.ends.set(id, done)
    return {
      cancel: () => {
        if (this.ends.delete(id)) this.addon.cancel(id)
      },
    }
  }

  /** Carries under way. */
  get size(): number {
    return this.addon.count()
  }
}

/** The descriptor of an open plain (not TLS) TCP socket. */
export function socketFd(s: Socket): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0 || s.destroyed || 'encrypted' in s) return undefined
  return fd
}

let loaded: NativeCarry | null | undefined

/** The process's carries, or undefined when the addon was not built (relays then copy). */
export function nativeCarry(): NativeCarry | undefined {
  if (loaded === undefined) {
    try {
      const require = createRequire(import.meta.url)
      loaded = new NativeCarry(
        require(join(import.meta.dirname, '../../native/build/Release/carry.node')) as Addon,
      )
    } catch {
      loaded = null
    }
  }
  return loaded ?? undefined
}
