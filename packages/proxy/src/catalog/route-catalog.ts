import { setTimeout as sleep } from 'node:timers/promises'
import type { Client, Transport } from '@connectrpc/connect'
import { createWarrenClient, type Logger, SingleFlight } from '@warren/shared'
import { ProxyService, type Route, RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { LRUCache } from 'lru-cache'

export type ProxyClient = Client<typeof ProxyService>

const MISS_TTL_MS = 1000
const MAX_MISSES = 10_000
/** How long a confirmed route answers for its sandbox (bounds the API reads a flood makes). */
const CONFIRM_TTL_MS = 500
const MAX_CONFIRMED = 10_000
/** A route asked of the control plane: past this the request is answered without it. */
const ASK_TIMEOUT_MS = 5000
/**
 * After an ask that failed slowly, running sandboxes are served from the copy
 * without asking for this long: a control plane that does not answer costs
 * one slow call per period, not one per request.
 */
const AWAY_MS = 5000
/**
 * An ask that fails faster than this (connection refused: an API restarting)
 * cost nothing worth saving, so asking goes on — and sees the API the moment
 * it is back, before the stream is (a pause made then must not be missed).
 */
const SLOW_FAIL_MS = 250
/** Reconnect backoff stays short: the API restarting is the usual cause. */
const MAX_BACKOFF_MS = 1000

/**
 * What the edge's routing reads of the catalog: the RouteCatalog itself, or
 * a proxy worker's copy of the primary's (see workers/catalog-copy.ts).
 */
export interface Catalog {
  readonly tokenGeneration: number
  readyWithin(ms: number): Promise<boolean>
  /** Resolves once this copy holds every change its source held when asked. */
  caughtUp(): Promise<void>
  lookup(sandboxId: string): Promise<Route | undefined>
  /** What `lookup` would answer without asking anyone: the route while the copy follows the stream. */
  peek(sandboxId: string): Route | undefined
  recentMiss(sandboxId: string): boolean
  noteMiss(sandboxId: string): void
  confirm(sandboxId: string): Promise<Route | undefined>
  put(route: Route): void
  isLive(sandboxId: string): boolean
  withEnvdTokens(): Iterable<Route & { envdAccessToken: string }>
  /** Follows every change of the copy, in order. */
  onChange(listener: (change: CatalogChange) => void): () => void
}

/** A change of the copy, as a proxy worker's copy applies it. */
export type CatalogChange =
  | { kind: 'snapshot'; routes: Route[] }
  | { kind: 'upsert'; route: Route }
  | { kind: 'remove'; sandboxId: string }
  | { kind: 'following'; following: boolean }
  | { kind: 'miss'; sandboxId: string }

/**
 * The edge proxy's copy of the API's routing catalog, kept current by the
 * WatchCatalog stream: a snapshot, then every change in order. A broken
 * stream is reopened with backoff and starts again from a fresh snapshot.
 */
export class RouteCatalog implements Catalog {
  readonly client: ProxyClient
  private readonly listeners = new Set<(change: CatalogChange) => void>()
  private routes = new Map<string, Route>()
  private readonly misses = new Map<string, number>()
  private readonly confirmed = new LRUCache<string, { route: Route | null }>({
    max: MAX_CONFIRMED,
    ttl: CONFIRM_TTL_MS,
  })
  private readonly confirming = new SingleFlight<Route | undefined>()
  /** The stream is open and past its snapshot: the copy is current. */
  private following = false
  /** Until then the control plane is taken for away (see lookup). */
  private awayUntil = 0
  /** The last ask failed: the next failures are not logged again until one succeeds. */
  private askFailing = false
  private readySignal: Promise<void>
  private markReady!: () => void
  private isReady = false
  private abort = new AbortController()
  private loop: Promise<void> | undefined
  /**
   * Counts routes that arrived with an envd token not seen under that id
   * before: what was searched for a signature at one count need not be
   * searched again until it moves.
   */
  tokenGeneration = 0

  constructor(
    transport: Transport,
    private readonly log: Logger,
  ) {
    this.client = createWarrenClient(ProxyService, transport)
    this.readySignal = new Promise((resolve) => {
      this.markReady = resolve
    })
  }

  /**
   * Whether the first snapshot has arrived, waiting at most `ms` for it:
   * while the API cannot be reached, callers get an answer instead of
   * waiting for as long as the API stays away.
   */
  /** This copy is the source. */
  async caughtUp(): Promise<void> {}

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

  /**
   * The route the local copy has, undefined on a miss (the caller asks the
   * control plane: ResumeSandbox routes it, and wakes it if the request may).
   * While the stream is down the copy may be stale (an API that restarted
   * paused the sandbox before this edge reconnected): the route is asked
   * for again, falling back to the copy: a control plane that is away —
   * stopped, or unreachable from a remote data plane — does not stop traffic
   * to running sandboxes. Once an ask failed slowly, a running sandbox is
   * served from the copy without asking for AWAY_MS, so an unanswering
   * control plane does not delay each request by a call that times out.
   */
  async lookup(sandboxId: string): Promise<Route | undefined> {
    const known = this.routes.get(sandboxId)
    if (!known) return undefined
    if (this.following) return known
    if (known.state === RouteState.RUNNING && Date.now() < this.awayUntil) return known
    const asked = Date.now()
    try {
      const { route } = await this.client.getRoute({ sandboxId }, { timeoutMs: ASK_TIMEOUT_MS })
      this.askFailing = false
      if (route && !this.following) this.set(route)
      return this.routes.get(sandboxId) ?? route
    } catch (err) {
      if (Date.now() - asked >= SLOW_FAIL_MS) this.awayUntil = Date.now() + AWAY_MS
      if (!this.askFailing)
        this.log.warn({ err, sandboxId }, 'route lookup failed; serving the copy')
      this.askFailing = true
      return known
    }
  }

  peek(sandboxId: string): Route | undefined {
    return this.isReady && this.following ? this.routes.get(sandboxId) : undefined
  }

  /** Whether the control plane said of this id, less than a second ago, that it knows no such sandbox. */
  recentMiss(sandboxId: string): boolean {
    const until = this.misses.get(sandboxId)
    return !!until && until > Date.now()
  }

  /**
   * The control plane knows no such sandbox: not asked again for a second
   * (bounded), so that unknown ids cannot flood it.
   */
  noteMiss(sandboxId: string): void {
    if (this.misses.size >= MAX_MISSES) this.misses.clear()
    this.misses.set(sandboxId, Date.now() + MISS_TTL_MS)
    this.emit({ kind: 'miss', sandboxId })
  }

  /**
   * Follows every change of the copy (proxy workers' copies are fed from
   * it); the caller first takes the current state from `current()`.
   */
  onChange(listener: (change: CatalogChange) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The copy as it is: what a new proxy worker starts from. */
  current(): { ready: boolean; following: boolean; routes: Route[] } {
    return { ready: this.isReady, following: this.following, routes: [...this.routes.values()] }
  }

  private emit(change: CatalogChange): void {
    for (const l of this.listeners) l(change)
  }

  /**
   * The API's current route, for a request the local copy would refuse
   * (paused, killed, pausing): with several API replicas a change made on
   * another one reaches this copy only after the store's notification does
   * (a resume through replica B, then traffic at once through an edge
   * following replica A). Not written into the copy — the stream orders
   * changes, and may already carry a newer one. Shared by concurrent callers
   * and remembered briefly, so refused traffic cannot flood the API.
   */
  async confirm(sandboxId: string): Promise<Route | undefined> {
    const known = this.confirmed.get(sandboxId)
    if (known) return known.route ?? undefined
    return this.confirming.run(sandboxId, async () => {
      try {
        const { route } = await this.client.getRoute({ sandboxId }, { timeoutMs: ASK_TIMEOUT_MS })
        this.confirmed.set(sandboxId, { route: route ?? null })
        return route
      } catch (err) {
        this.log.warn({ err, sandboxId }, 'route confirmation failed')
        return undefined
      }
    })
  }

  /** Applies a route learned from a direct call (e.g. a resume) ahead of the stream. */
  put(route: Route): void {
    this.set(route)
  }

  /** Whether the sandbox is known here and not killed (its per-sandbox series may stay). */
  isLive(sandboxId: string): boolean {
    const r = this.routes.get(sandboxId)
    return !!r && r.state !== RouteState.KILLED
  }

  /** Every known route of a secure sandbox (those that have an envd token). */
  *withEnvdTokens(): Generator<Route & { envdAccessToken: string }> {
    for (const r of this.routes.values())
      if (r.envdAccessToken) yield r as Route & { envdAccessToken: string }
  }

  private set(route: Route): void {
    const before = this.routes.get(route.sandboxId)
    if (route.envdAccessToken && before?.envdAccessToken !== route.envdAccessToken)
      this.tokenGeneration++
    this.routes.set(route.sandboxId, route)
    this.emit({ kind: 'upsert', route })
  }

  start(): void {
    this.loop ??= this.follow()
  }

  async stop(): Promise<void> {
    this.abort.abort()
    await this.loop
  }

  private async follow(): Promise<void> {
    let delay = 100
    while (!this.abort.signal.aborted) {
      try {
        for await (const ev of this.client.watchCatalog({}, { signal: this.abort.signal })) {
          const e = ev.event
          if (e.case === 'snapshot') {
            this.routes = new Map(e.value.routes.map((r) => [r.sandboxId, r]))
            this.tokenGeneration++
            this.misses.clear()
            this.following = true
            this.isReady = true
            this.markReady()
            this.emit({ kind: 'snapshot', routes: e.value.routes })
            delay = 100
          } else if (e.case === 'upsert') {
            this.set(e.value)
            this.misses.delete(e.value.sandboxId)
            // The stream has caught up with (or passed) what was confirmed.
            this.confirmed.delete(e.value.sandboxId)
          } else if (e.case === 'remove') {
            this.routes.delete(e.value)
            this.emit({ kind: 'remove', sandboxId: e.value })
          }
        }
      } catch (err) {
        if (this.abort.signal.aborted) return
        this.log.warn({ err }, 'catalog stream broke; reconnecting')
      }
      if (this.following) this.emit({ kind: 'following', following: false })
      this.following = false
      await sleep(delay, undefined, { signal: this.abort.signal }).catch(() => {})
      delay = Math.min(delay * 2, MAX_BACKOFF_MS)
    }
  }
}
