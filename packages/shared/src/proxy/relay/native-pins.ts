import { createRequire } from 'node:module'
import { Socket } from 'node:net'
import { join } from 'node:path'
import type { ForwardTarget } from '../forward.js'
import { socketFd } from '../native-carry.js'

/**
 * What lets a connection be pinned after a request: the resolver sets it on
 * a target when every later request on the connection that repeats the
 * `same` headers byte for byte (a GET or HEAD, no body) would be resolved to
 * the same target — until `release(sandboxId)` says the route changed.
 */
export interface PinTerms {
  sandboxId: string
  /** The request headers the resolution depended on (lower case; at most 16). */
  same: readonly string[]
  /** For each request carried on the pin (keepalive traffic), told in batches. */
  touch?: (() => void) | undefined
}

/** A pinned connection's owner: the relay that pinned it. */
export interface PinOwner {
  /** An answer the pin carried: its status and how long it took. */
  record?: ((status: number, seconds: number) => void) | undefined
}

export interface PinRequest {
  client: Socket
  upstream: Socket
  /** The raw head of the request just answered on both. */
  head: Buffer
  target: ForwardTarget & { pin: PinTerms }
  owner: PinOwner
  /** Takes the client connection back, with the bytes read and not yet answered. */
  resume(socket: Socket, data: Buffer): void
}

interface Addon {
  init(
    entries: Uint32Array,
    onEnd: (id: number, fd: number, data: Buffer) => void,
    onFull: () => void,
  ): void
  pin(
    id: number,
    clientFd: number,
    upstreamFd: number,
    head: Buffer,
    same: readonly string[],
    drop: readonly string[],
    add: string,
  ): boolean
  release(id: number): void
  drop(id: number): void
  take(): number
  count(): number
}

/** Answers recorded between drains; a full array is drained at once. */
const ENTRIES = 16_384
const DRAIN_MS = 250
/** Node's HTTP server leaves these to the relay; the pin drops them as the relay does. */
const ALWAYS_DROPPED = ['x-request-id']

interface Pin {
  sandboxId: string
  owner: PinOwner
  resume: PinRequest['resume']
  touch: (() => void) | undefined
}

/**
 * The process's pinned connections (native/pins.c): after the relay
 * answered a request whose target allows it (PinTerms), the client
 * connection and its upstream connection are carried on in C, request by
 * request, on this process's own event loop. What C does not carry comes
 * back to the owner at a request boundary (see pins.c).
 */
export class NativePins {
  private readonly pins = new Map<number, Pin>()
  private readonly bySandbox = new Map<string, Set<number>>()
  private readonly entries = new Uint32Array(ENTRIES * 3)
  private nextId = 1
  private drainer: NodeJS.Timeout | undefined

  constructor(private readonly addon: Addon) {
    addon.init(
      this.entries,
      (id, fd, data) => this.ended(id, fd, data),
      () => this.drain(),
    )
  }

  /** Pins the connection: true when C carries it from now on (the sockets given are destroyed). */
  pin(p: PinRequest): boolean {
    const clientFd = fdOf(p.client)
    const upstreamFd = fdOf(p.upstream)
    if (clientFd === undefined || upstreamFd === undefined) return false
    const t = p.target
    const set = t.setHeaders ?? {}
    let add = ''
    for (const k in set) add += `${k}: ${set[k]}\r\n`
    const drop = [...(t.removeHeaders ?? []), ...Object.keys(set), ...ALWAYS_DROPPED]
    const id = this.nextId++
    if (this.nextId > 0xffff_fff0) this.nextId = 1
    if (!this.addon.pin(id, clientFd, upstreamFd, p.head, t.pin.same, drop, add)) return false
    // C holds its own descriptors of both connections now.
    p.client.destroy()
    p.upstream.destroy()
    const { sandboxId, touch } = t.pin
    this.pins.set(id, { sandboxId, owner: p.owner, resume: p.resume, touch })
    let ids = this.bySandbox.get(sandboxId)
    if (!ids) {
      ids = new Set()
      this.bySandbox.set(sandboxId, ids)
    }
    ids.add(id)
    this.drainer ??= setInterval(() => this.drain(), DRAIN_MS).unref()
    return true
  }

  /** The route of `sandboxId` may have changed: its pins end at their next request boundary. */
  release(sandboxId: string): void {
    const ids = this.bySandbox.get(sandboxId)
    if (!ids) return
    for (const id of [...ids]) this.addon.release(id)
  }

  releaseAll(): void {
    for (const id of [...this.pins.keys()]) this.addon.release(id)
  }

  /** Closes the pins of `owner` (its server is closing). */
  close(owner: PinOwner): void {
    for (const [id, pin] of [...this.pins]) if (pin.owner === owner) this.addon.drop(id)
  }

  /** Pinned connections open now. */
  get size(): number {
    return this.addon.count()
  }

  /** Records the answers C carried since the last drain, and their keepalive traffic. */
  drain(): void {
    const n = this.addon.take()
    const e = this.entries
    const touched = new Set<Pin>()
    for (let i = 0; i < n * 3; i += 3) {
      const pin = this.pins.get(e[i] as number)
      if (!pin) continue
      pin.owner.record?.(e[i + 1] as number, (e[i + 2] as number) / 1e6)
      if (pin.touch) touched.add(pin)
    }
    for (const pin of touched) pin.touch?.()
    if (!this.pins.size && this.drainer) {
      clearInterval(this.drainer)
      this.drainer = undefined
    }
  }

  private ended(id: number, fd: number, data: Buffer): void {
    // Its last answers are recorded while the pin is still known.
    this.drain()
    const pin = this.pins.get(id)
    if (!pin) return
    this.pins.delete(id)
    const ids = this.bySandbox.get(pin.sandboxId)
    ids?.delete(id)
    if (ids && !ids.size) this.bySandbox.delete(pin.sandboxId)
    if (fd < 0) return
    const socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true })
    pin.resume(socket, data)
  }
}

/** The connection's descriptor, for a plain TCP socket that holds no unread or unsent bytes. */
function fdOf(s: Socket): number | undefined {
  if (s.readableLength > 0 || s.writableLength > 0 || s.isPaused()) return undefined
  return socketFd(s)
}

let loaded: NativePins | null | undefined

/**
 * The process's pins, or undefined when the addon was not built (the relay
 * then carries every request in JavaScript).
 */
export function nativePins(): NativePins | undefined {
  if (loaded === undefined) {
    try {
      const require = createRequire(import.meta.url)
      const addon = require(
        join(import.meta.dirname, '../../../native/build/Release/pins.node'),
      ) as Addon
      loaded = new NativePins(addon)
    } catch {
      loaded = null
    }
  }
  return loaded ?? undefined
}
