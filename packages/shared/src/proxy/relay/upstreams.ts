import type { Socket } from 'node:net'
import type { ForwardTarget } from '../forward.js'
import { dialUpstream } from '../window-dial.js'

/** How long an idle connection is kept when its server gave no `Keep-Alive: timeout` (as undici). */
const DEFAULT_IDLE_MS = 4_000
/** The longest an idle connection is kept, whatever its server says. */
const MAX_IDLE_MS = 30_000
/** Taken back this long before the server's own timeout, so a request does not meet its close. */
const IDLE_MARGIN_MS = 1_000
/** Idle connections kept per upstream; one more is closed on release. */
const MAX_IDLE_PER_KEY = 256
/** How often idle connections past their time are closed. */
const SWEEP_MS = 1_000

/** Who reads an upstream connection while a request is on it. */
export interface UpstreamUser {
  upstreamData(chunk: Buffer): void
  upstreamEnd(): void
  upstreamGone(err: Error | undefined): void
}

/**
 * A connection to an upstream. Its listeners are set once, when it is
 * dialled, and pass its events to the request using it (`user`); while it
 * is idle in the pool, anything it does — closing, or sending with no
 * request outstanding — takes it out and closes it.
 */
export class Upstream {
  user: UpstreamUser | undefined
  /** Whether it served a request before (a reused connection may meet the server's idle close). */
  reused = false
  /** While idle: when it is closed (ms since the epoch). */
  expiresAt = 0

  constructor(
    readonly socket: Socket,
    readonly key: string,
    idleGone: (up: Upstream) => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      if (this.user) this.user.upstreamData(chunk)
      else idleGone(this)
    })
    socket.on('end', () => {
      if (this.user) this.user.upstreamEnd()
      else idleGone(this)
    })
    socket.on('error', (err: Error) => {
      if (this.user) this.user.upstreamGone(err)
      else idleGone(this)
    })
    socket.on('close', () => {
      if (this.user) this.user.upstreamGone(undefined)
      else idleGone(this)
    })
  }
}

/** What tells two targets' connections apart: address, TLS and connect window. */
export function upstreamKey(t: ForwardTarget): string {
  const tls =
    t.tls === undefined || t.tls === false ? '-' : t.tls === true ? 'tls' : t.tls.servername
  return `${t.host}|${t.port}|${tls}|${t.connectWindow?.id ?? '-'}`
}

/**
 * Idle keep-alive connections of the relay, by upstream: a request takes the
 * most recently used one or dials a new one (through the target's connect
 * window); a connection whose response ended cleanly is given back. An idle
 * connection that closes, or sends anything (no request is outstanding on
 * it), leaves the pool; it is closed after its server's keep-alive time.
 */
export class RawUpstreams {
  private readonly idle = new Map<string, Upstream[]>()
  private sweeper: NodeJS.Timeout | undefined
  private closed = false
  private readonly idleGone = (up: Upstream) => {
    this.remove(up)
    up.socket.destroy()
  }

  /** An idle connection at once, or a new one. */
  take(t: ForwardTarget): Upstream | Promise<Upstream> {
    const key = upstreamKey(t)
    const list = this.idle.get(key)
    if (list) {
      const now = Date.now()
      for (let up = list.pop(); up; up = list.pop()) {
        if (up.expiresAt > now) {
          if (!list.length) this.idle.delete(key)
          return up
        }
        up.socket.destroy()
      }
      this.idle.delete(key)
    }
    return this.dial(t, key)
  }

  /** `idleMs`: the server's keep-alive timeout when it sent one. */
  release(up: Upstream, idleMs?: number): void {
    up.user = undefined
    const list = this.idle.get(up.key) ?? []
    const keep = Math.min(
      MAX_IDLE_MS,
      idleMs === undefined ? DEFAULT_IDLE_MS : idleMs - IDLE_MARGIN_MS,
    )
    if (this.closed || up.socket.destroyed || list.length >= MAX_IDLE_PER_KEY || keep <= 0) {
      up.socket.destroy()
      return
    }
    up.reused = true
    up.expiresAt = Date.now() + keep
    // Paused while its client could not take more; an idle one must see its close.
    up.socket.resume()
    list.push(up)
    this.idle.set(up.key, list)
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref()
  }

  close(): void {
    this.closed = true
    clearInterval(this.sweeper)
    for (const list of this.idle.values()) for (const up of list) up.socket.destroy()
    this.idle.clear()
  }

  private async dial(t: ForwardTarget, key: string): Promise<Upstream> {
    if (this.closed) throw Object.assign(new Error('proxy closing'), { code: 'ECONNABORTED' })
    const socket = await dialUpstream(t.host, t.port, {
      retry: t.dialRetry,
      tls: t.tls ?? false,
      ...(t.connectWindow ? { window: t.connectWindow } : {}),
    })
    return new Upstream(socket as Socket, key, this.idleGone)
  }

  /** Closes the idle connections past their time. */
  private sweep(): void {
    const now = Date.now()
    for (const [key, list] of this.idle) {
      const fresh = list.filter((up) => up.expiresAt > now)
      if (fresh.length === list.length) continue
      for (const up of list) if (up.expiresAt <= now) up.socket.destroy()
      if (fresh.length) this.idle.set(key, fresh)
      else this.idle.delete(key)
    }
    if (!this.idle.size) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  private remove(up: Upstream): void {
    const list = this.idle.get(up.key)
    const i = list?.indexOf(up) ?? -1
    if (!list || i < 0) return
    list.splice(i, 1)
    if (!list.length) this.idle.delete(up.key)
  }
}
