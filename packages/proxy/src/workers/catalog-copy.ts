import { fromBinary, toBinary } from '@bufbuild/protobuf'
import type { Channel } from '@warren/shared'
import { type Route, RouteSchema, RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import type { Catalog, CatalogChange } from '../catalog/route-catalog.js'

const MISS_TTL_MS = 1000
const MAX_MISSES = 10_000

/** A route as it crosses the channel: its protobuf bytes, parsed again on arrival. */
export type WireRoute = Uint8Array
export const routeToWire = (r: Route): WireRoute => toBinary(RouteSchema, r)
export const routeFromWire = (b: WireRoute): Route => fromBinary(RouteSchema, b)

/** A catalog change as it crosses the channel. */
export type WireChange =
  | { kind: 'snapshot'; routes: WireRoute[] }
  | { kind: 'upsert'; route: WireRoute }
  | { kind: 'remove'; sandboxId: string }
  | { kind: 'following'; following: boolean }
  | { kind: 'miss'; sandboxId: string }

export function changeToWire(c: CatalogChange): WireChange {
  if (c.kind === 'snapshot') return { kind: 'snapshot', routes: c.routes.map(routeToWire) }
  if (c.kind === 'upsert') return { kind: 'upsert', route: routeToWire(c.route) }
  return c
}

/**
 * A proxy worker's copy of the primary's catalog: every change the primary's
 * stream brings (and every route a resume learns) is applied here in the
 * order the primary saw it. Reads are local; what the primary's catalog
 * would ask the control plane (a route while its stream is down, a
 * confirmation) is asked of the primary, so the API sees one edge.
 */
export class CatalogCopy implements Catalog {
  private routes = new Map<string, Route>()
  private readonly misses = new Map<string, number>()
  private following = false
  private isReady = false
  private readonly listeners = new Set<(change: CatalogChange) => void>()
  private readonly readySignal: Promise<void>
  private markReady!: () => void
  tokenGeneration = 0

  constructor(private readonly primary: Channel) {
    this.readySignal = new Promise((resolve) => {
      this.markReady = resolve
    })
  }

  /** The primary's catalog as it stood when this worker started. */
  start(state: { ready: boolean; following: boolean; routes: WireRoute[] }): void {
    if (state.ready) this.apply({ kind: 'snapshot', routes: state.routes })
    this.following = state.following
  }

  apply(c: WireChange): void {
    switch (c.kind) {
      case 'snapshot':
        this.routes = new Map(
          c.routes.map((b) => {
            const r = routeFromWire(b)
            return [r.sandboxId, r]
          }),
        )
        this.tokenGeneration++
        this.misses.clear()
        this.following = true
        this.isReady = true
        this.markReady()
        this.emit({ kind: 'snapshot', routes: [...this.routes.values()] })
        return
      case 'upsert': {
        const route = routeFromWire(c.route)
        this.set(route)
        this.misses.delete(route.sandboxId)
        return
      }
      case 'remove':
        this.routes.delete(c.sandboxId)
        this.emit(c)
        return
      case 'following':
        this.following = c.following
        return
      case 'miss':
        if (this.misses.size >= MAX_MISSES) this.misses.clear()
        this.misses.set(c.sandboxId, Date.now() + MISS_TTL_MS)
        return
    }
  }

  /** The primary answers after every change it had sent: they come first on the one channel. */
  async caughtUp(): Promise<void> {
    await this.primary.call('caughtUp')
  }

  async readyWithin(ms: number): Promise<boolean> {
    if (this.isReady) return true
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms)
    })
    try {
      return await Promise.race([this.readySignal.then(() => true), timedOut])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Local while the primary follows the stream; otherwise the primary's lookup (see RouteCatalog.lookup). */
  async lookup(sandboxId: string): Promise<Route | undefined> {
    const known = this.routes.get(sandboxId)
    if (!known) return undefined
    if (this.following) return known
    const asked = await this.primary.call<WireRoute | null>('lookup', sandboxId)
    return asked ? routeFromWire(asked) : undefined
  }

  peek(sandboxId: string): Route | undefined {
    return this.isReady && this.following ? this.routes.get(sandboxId) : undefined
  }

  recentMiss(sandboxId: string): boolean {
    const until = this.misses.get(sandboxId)
    return !!until && until > Date.now()
  }

  /** Noted by the primary, which tells every worker (this one too). */
  noteMiss(sandboxId: string): void {
    this.primary.note('noteMiss', sandboxId)
  }

  async confirm(sandboxId: string): Promise<Route | undefined> {
    const route = await this.primary.call<WireRoute | null>('confirm', sandboxId)
    return route ? routeFromWire(route) : undefined
  }

  put(route: Route): void {
    this.set(route)
  }

  isLive(sandboxId: string): boolean {
    const r = this.routes.get(sandboxId)
    return !!r && r.state !== RouteState.KILLED
  }

  *withEnvdTokens(): Generator<Route & { envdAccessToken: string }> {
    for (const r of this.routes.values())
      if (r.envdAccessToken) yield r as Route & { envdAccessToken: string }
  }

  onChange(listener: (change: CatalogChange) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private set(route: Route): void {
    const before = this.routes.get(route.sandboxId)
    if (route.envdAccessToken && before?.envdAccessToken !== route.envdAccessToken)
      this.tokenGeneration++
    this.routes.set(route.sandboxId, route)
    this.emit({ kind: 'upsert', route })
  }

  private emit(change: CatalogChange): void {
    for (const l of this.listeners) l(change)
  }
}
