import { createRequire } from 'node:module'
import type { Socket } from 'node:net'
import { join } from 'node:path'

interface Addon {
  init(onEnd: (id: number, aToB: number, extra: number, errno: number) => void): void
  join(id: number, a: number, b: number, idleMs: number): boolean
  send(id: number, from: number, to: number, length: number, idleMs: number): boolean
  cancel(id: number): void
  count(): number
}

/**
 * How a carry ended: the bytes it moved, and the errno that ended it (0: it
 * finished; ETIMEDOUT: nothing moved for its idle time; EPIPE for a send:
 * `from` ended before the length).
 */
export interface CarryEnd {
  /** a to b (join), from to `to` (send). */
  carried: number
  /** b to a (join); for a send that finished, the bytes `from` already holds past the length. */
  extra: number
  errno: number
}

/** A carry under way: `cancel` stops it (its end is then never told). */
export interface Carry {
  cancel(): void
}

/**
 * The process's kernel-carried connections (native/carry.c): bytes move
 * between two sockets by splice(2) through a pipe, on this process's own
 * event loop, never copied through its memory. Each carry works on its own
 * duplicates of the sockets' descriptors; the Node sockets stay open, idle,
 * and the caller's (closing them and cancelling the carry closes the
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
   * Carries both ways between `a` and `b` until each side has ended (each
   * end passed on as a half-close), either fails, or nothing moved for
   * `idleMs` (0: no limit); `done` is then told and the connections are
   * closed. Both Node sockets are destroyed at once: the carry holds the
   * connections. Undefined (nothing changed) when it could not start: a
   * socket holds bytes unread or unsent.
   */
  join(a: Socket, b: Socket, idleMs: number, done: (end: CarryEnd) => void): Carry | undefined {
    const fa = emptyFd(a)
    const fb = emptyFd(b)
    if (fa === undefined || fb === undefined) return undefined
    const carry = this.start((id) => this.addon.join(id, fa, fb, idleMs), done)
    // No read can come between the check and here: reads run on the loop's next turn.
    if (carry) {
      a.destroy()
      b.destroy()
    }
    return carry
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
    const ff = reading ? undefined : emptyFd(from)
    const ft = fdOf(to)
    if (ff === undefined || ft === undefined || to.writableLength > 0) return undefined
    return this.start((id) => this.addon.send(id, ff, ft, length, idleMs), done)
  }

  /** Carries under way. */
  get size(): number {
    return this.addon.count()
  }

  private start(run: (id: number) => boolean, done: (end: CarryEnd) => void): Carry | undefined {
    const id = this.nextId++
    if (this.nextId > 0xffff_fff0) this.nextId = 1
    if (!run(id)) return undefined
    this.ends.set(id, done)
    return {
      cancel: () => {
        if (this.ends.delete(id)) this.addon.cancel(id)
      },
    }
  }
}

function fdOf(s: Socket): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0 || s.destroyed || 'encrypted' in s) return undefined
  return fd
}

/** The descriptor of a plain TCP socket that holds no bytes unread or unsent. */
function emptyFd(s: Socket): number | undefined {
  if (s.readableLength > 0 || s.writableLength > 0) return undefined
  return fdOf(s)
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
