import type { Socket } from 'node:net'

/**
 * How many new connections to one server port may be on their way in at once
 * (connecting, or connected and not yet answered), as a congestion window.
 *
 * Why: a server with a short listen backlog (`python3 -m http.server` listens
 * with 5) drops the SYNs that find its accept queue full, and the kernel
 * sends them again only after 1 s, 3 s, 7 s… A burst of 100 new connections
 * thrown at it at once took ~27 s. Kept within what the server takes in, the
 * same burst is served in the time the server needs to answer it.
 *
 * The window starts small and grows by one for each connection answered while
 * the window was full (slow start: it doubles per round trip), so a server
 * that accepts quickly is soon given as many connections as are asked for. A
 * connect that goes unanswered (its SYN dropped: the accept queue is full)
 * halves it, once per round, and caps it below the number of connections
 * that were on their way in when the SYN was dropped — a server's accept
 * queue does not change size, so the window does not go on finding it by
 * overflowing it; the cap is lifted after `ceilingMs` without a drop.
 * Requests beyond the window wait in a bounded queue, each for a bounded
 * time.
 */
export interface ConnectWindowOptions {
  /** The window of a port never seen before. */
  initial: number
  /** The widest the window grows (the upstream pool's connection limit). */
  max: number
  /** Connections that may wait for the window; beyond, refused at once. */
  queueLimit: number
  /** The longest one connection waits for the window. */
  queueTimeoutMs: number
  /**
   * The longest a connected, unanswered connection holds its place: one that
   * takes longer (a long poll, a slow computation) has been accepted — a
   * server takes its accept queue in far quicker — so it counts as answered,
   * and a long-lived connection does not keep the port's window shut.
   */
  holdMs: number
  /** How long a cap learned from a dropped SYN holds without another drop. */
  ceilingMs: number
}

export const CONNECT_WINDOW_DEFAULTS: ConnectWindowOptions = {
  initial: 4,
  max: 256,
  queueLimit: 1024,
  queueTimeoutMs: 30_000,
  holdMs: 100,
  ceilingMs: 30_000,
}

/** Why a connection got no place in the window: `full` queue or `timeout` waiting. */
export class ConnectWindowError extends Error {
  constructor(
    readonly reason: 'full' | 'timeout' | 'closed',
    message: string,
  ) {
    super(message)
    this.name = 'ConnectWindowError'
  }
}

/**
 * What dialling through a window needs of it: a ConnectWindow, or a proxy
 * worker's stand-in for its primary's (the places are counted there).
 */
export interface ConnectWindowHandle {
  /** Distinct per window: a pool of connections belongs to one window. */
  readonly id: number
  readonly opts: ConnectWindowOptions
  acquire(retry?: boolean): Promise<ConnectSlot>
}

/** One connection's place in the window; exactly one of its ends counts. */
export interface ConnectSlot {
  /** The server answered (or held it past `holdMs`): the window may grow. */
  answered(): void
  /** The connect went unanswered (SYN dropped): the window shrinks. */
  dropped(): void
  /** Neither: refused, failed, or closed unanswered. */
  free(): void
}

interface Waiter {
  grant: (slot: ConnectSlot) => void
  fail: (err: Error) => void
  timer: NodeJS.Timeout
}

let windows = 0

export class ConnectWindow implements ConnectWindowHandle {
  /** Unique in the process: what keys the connection pool that dials through this window. */
  readonly id = ++windows
  private cwnd: number
  private ssthresh: number
  private inFlight = 0
  /** Bumped by each decrease: drops of slots granted before it are the same loss. */
  private round = 0
  /** The most the window may grow to until `ceilingUntil` (after a drop). */
  private ceiling: number
  private ceilingUntil = 0
  private readonly waiting: Waiter[] = []
  private closed = false
  /** Last use (grant or end), for the registry's idle sweep. */
  used = Date.now()

  constructor(
    readonly opts: ConnectWindowOptions = CONNECT_WINDOW_DEFAULTS,
    private readonly describe = 'the port',
  ) {
    this.cwnd = opts.initial
    this.ssthresh = opts.max
    this.ceiling = opts.max
  }

  /** The current window (whole connections). */
  get size(): number {
    return Math.floor(this.cwnd)
  }

  get pending(): { inFlight: number; waiting: number } {
    return { inFlight: this.inFlight, waiting: this.waiting.length }
  }

  /**
   * Waits for a place in the window. `retry`: a connection trying again
   * (its SYN dropped) goes ahead of those that have not tried yet.
   */
  acquire(retry = false): Promise<ConnectSlot> {
    if (this.closed)
      return Promise.reject(new ConnectWindowError('closed', `${this.describe} is gone`))
    this.used = Date.now()
    if (this.inFlight < this.size && (retry || this.waiting.length === 0))
      return Promise.resolve(this.slot())
    if (this.waiting.length >= this.opts.queueLimit) {
      return Promise.reject(
        new ConnectWindowError(
          'full',
          `${this.describe} has ${this.waiting.length} connections waiting to be accepted; retry`,
        ),
      )
    }
    return new Promise((grant, fail) => {
      const waiter: Waiter = {
        grant,
        fail,
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(waiter)
          if (i >= 0) this.waiting.splice(i, 1)
          fail(
            new ConnectWindowError(
              'timeout',
              `${this.describe} accepted no connection for this request within ${this.opts.queueTimeoutMs / 1000} s; retry`,
            ),
          )
        }, this.opts.queueTimeoutMs),
      }
      if (retry) this.waiting.unshift(waiter)
      else this.waiting.push(waiter)
    })
  }

  /** Fails every waiting connection; later acquires fail at once (the sandbox is gone). */
  close(): void {
    this.closed = true
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer)
      w.fail(new ConnectWindowError('closed', `${this.describe} is gone`))
    }
  }

  private slot(): ConnectSlot {
    this.inFlight++
    const round = this.round
    const position = this.inFlight
    // Growth only while the window is what limits: a trickle of requests
    // never using it must not widen it for the next burst.
    let full = this.inFlight >= this.size
    let ended = false
    const end = (how: 'answered' | 'dropped' | 'free') => {
      if (ended) return
      ended = true
      this.inFlight--
      this.used = Date.now()
      if (how === 'answered' && (full || this.waiting.length > 0)) this.grow()
      if (how === 'dropped') this.dropped(round, position)
      this.admit()
    }
    return {
      answered: () => end('answered'),
      dropped: () => end('dropped'),
      free: () => {
        full = false
        end('free')
      },
    }
  }

  private grow(): void {
    const cap = Date.now() < this.ceilingUntil ? this.ceiling : this.opts.max
    const next = this.cwnd + (this.cwnd < this.ssthresh ? 1 : 1 / this.cwnd)
    this.cwnd = Math.max(this.cwnd, Math.min(next, cap))
  }

  /**
   * A SYN dropped while `position` connections (this one included) were on
   * their way in: the accept queue held fewer — or others too (connections
   * past their hold, another client's), so a drop lowers the cap by at
   * most half. Once per round: the drops of connections made before the
   * last decrease are the same overflow.
   */
  private dropped(round: number, position: number): void {
    if (round !== this.round) return
    this.round++
    const capped = Date.now() < this.ceilingUntil ? this.ceiling : this.opts.max
    const estimate = Math.max(position - 1, Math.floor(this.size / 2))
    this.ceiling = Math.max(1, Math.min(capped, estimate))
    this.ceilingUntil = Date.now() + this.opts.ceilingMs
    this.ssthresh = Math.max(1, Math.floor(this.cwnd / 2))
    this.cwnd = Math.min(this.ssthresh, this.ceiling)
  }

  private admit(): void {
    while (this.waiting.length > 0 && this.inFlight < this.size) {
      const w = this.waiting.shift() as Waiter
      clearTimeout(w.timer)
      w.grant(this.slot())
    }
  }
}

/**
 * Ends `slot` when the server first answers on `socket` (readable data: the
 * response begins) or `holdMs` passes (answered), or when the socket closes
 * (freed), whichever comes first. A 'readable' listener does not consume data, and the HTTP
 * client (undici) reads this socket through 'readable' itself.
 */
export function holdUntilAnswered(slot: ConnectSlot, socket: Socket, holdMs: number): void {
  const done = (answered: boolean) => {
    clearTimeout(timer)
    socket.off('readable', onReadable)
    socket.off('close', onClose)
    if (answered) slot.answered()
    else slot.free()
  }
  const onReadable = () => done(true)
  const onClose = () => done(false)
  const timer = setTimeout(() => done(true), holdMs)
  timer.unref()
  socket.once('readable', onReadable)
  socket.once('close', onClose)
}
