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

/** A connection to an upstream, with what the relay needs to know of it. */
export interface Upstream {
  socket: Socket
  key: string
  /** Whether it served a request before (a reused connection may meet the server's idle close). */
  reused: boolean
  /** While idle in the pool: what takes it out when it closes, sends or times out. */
  drop?: (() => void) | undefined
}

const IDLE_EVENTS = ['data', 'end', 'close', 'error', 'timeout'] as const

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
  private closed = false

  async take(t: ForwardTarget): Promise<Upstream> {
    const key = upstreamKey(t)
    const list = this.idle.get(key)
    const found = list?.pop()
    if (found) {
      if (!list?.length) this.idle.delete(key)
      this.unwatch(found)
      return found
    }
    if (this.closed) throw Object.assign(new Error('proxy closing'), { code: 'ECONNABORTED' })
    const socket = await dialUpstream(t.host, t.port, {
      retry: t.dialRetry,
      tls: t.tls ?? false,
      ...(t.connectWindow ? { window: t.connectWindow } : {}),
    })
    return { socket: socket as Socket, key, reused: false }
  }

  /** `idleMs`: the server's keep-alive timeout when it sent one. */
  release(up: Upstream, idleMs?: number): void {
    const list = this.idle.get(up.key) ?? []
    if (this.closed || up.socket.destroyed || list.length >= MAX_IDLE_PER_KEY) {
      up.socket.destroy()
      return
    }
    up.reused = true
    const keep = Math.min(
      MAX_IDLE_MS,
      idleMs === undefined ? DEFAULT_IDLE_MS : idleMs - IDLE_MARGIN_MS,
    )
    if (keep <= 0) {
      up.socket.destroy()
      return
    }
    const drop = () => {
      this.unwatch(up)
      this.remove(up)
      up.socket.destroy()
    }
    up.drop = drop
    for (const event of IDLE_EVENTS) up.socket.on(event, drop)
    up.socket.setTimeout(keep)
    // Paused while its client could not take more; an idle one must see its close.
    up.socket.resume()
    list.push(up)
    this.idle.set(up.key, list)
  }

  close(): void {
    this.closed = true
    for (const list of this.idle.values()) for (const up of list) up.socket.destroy()
    this.idle.clear()
  }

  private remove(up: Upstream): void {
    const list = this.idle.get(up.key)
    const i = list?.indexOf(up) ?? -1
    if (!list || i < 0) return
    list.splice(i, 1)
    if (!list.length) this.idle.delete(up.key)
  }

  private unwatch(up: Upstream): void {
    const drop = up.drop
    if (!drop) return
    up.drop = undefined
    for (const event of IDLE_EVENTS) up.socket.removeListener(event, drop)
    up.socket.setTimeout(0)
  }
}
