import { create } from '@bufbuild/protobuf'
import {
  type CatalogEvent,
  CatalogEventSchema,
  type Route,
  RouteSchema,
  RouteState,
} from '@warren/shared/gen/warren/api/v1/proxy_pb'
import type { Sandbox } from '../store/sandboxes.js'

const ROUTE_STATE: Record<Sandbox['state'], RouteState | undefined> = {
  creating: undefined,
  running: RouteState.RUNNING,
  pausing: RouteState.PAUSING,
  paused: RouteState.PAUSED,
  resuming: RouteState.RESUMING,
  killing: RouteState.KILLED,
  killed: RouteState.KILLED,
}

/**
 * The routing catalog proxies follow: one route per routable sandbox
 * (including tombstones of killed ones, so proxies can answer precisely).
 * Changes are published synchronously, before the API answers the request
 * that caused them, so an in-process proxy never routes to a killed sandbox.
 * With several replicas, changes made elsewhere arrive through the store's
 * notifications (feed.ts), possibly late or twice: each sandbox's route only
 * moves forward in its row version, so a stale one is dropped.
 */
export class Catalog {
  private readonly routes = new Map<string, Route>()
  private readonly nodeOf = new Map<string, string>()
  /** Each sandbox's cluster (null: the API's own): an edge follows only its own cluster's. */
  private readonly clusters = new Map<string, string | null>()
  private readonly versionOf = new Map<string, number>()
  private readonly subscribers = new Set<(ev: CatalogEvent, cluster: string | null) => void>()

  constructor(private readonly proxyUrlOf: (nodeId: string) => string | undefined) {}

  /** The row version the sandbox's route was last published at. */
  version(sandboxId: string): number | undefined {
    return this.versionOf.get(sandboxId)
  }

  /**
   * Publishes the sandbox's state (or nothing while it is being created),
   * unless the catalog already holds this version of it or a later one.
   */
  update(s: Sandbox): void {
    const state = ROUTE_STATE[s.state]
    if (state === undefined) return
    const known = this.versionOf.get(s.sandboxId)
    if (known !== undefined && s.version <= known) return
    this.versionOf.set(s.sandboxId, s.version)
    const route = create(RouteSchema, {
      sandboxId: s.sandboxId,
      state,
      nodeProxyUrl: this.proxyUrlOf(s.nodeId) ?? '',
      autoResume: s.lifecycle.autoResume,
      keepaliveTraffic: s.lifecycle.keepaliveTraffic,
      killReason: s.killReason ?? (s.state === 'killing' ? 'request' : ''),
      ...(s.envdAccessToken ? { envdAccessToken: s.envdAccessToken } : {}),
      ...(s.trafficAccessToken ? { trafficAccessToken: s.trafficAccessToken } : {}),
    })
    this.routes.set(s.sandboxId, route)
    this.nodeOf.set(s.sandboxId, s.nodeId)
    this.clusters.set(s.sandboxId, s.cluster)
    this.publish(create(CatalogEventSchema, { event: { case: 'upsert', value: route } }), s.cluster)
  }

  /** A node's proxy URL changed (or became known): its routes follow. */
  moveNode(nodeId: string, proxyUrl: string): void {
    for (const [id, route] of this.routes) {
      if (this.nodeOf.get(id) !== nodeId || route.nodeProxyUrl === proxyUrl) continue
      const moved = create(RouteSchema, { ...route, nodeProxyUrl: proxyUrl })
      this.routes.set(id, moved)
      this.publish(
        create(CatalogEventSchema, { event: { case: 'upsert', value: moved } }),
        this.clusterOf(id) ?? null,
      )
    }
  }

  /**
   * Takes the store's full list of routable sandboxes as the truth (after
   * the change feed was cut off and notifications may have been lost):
   * newer rows are published, routes of rows that are gone are removed.
   */
  reload(rows: Sandbox[]): void {
    const present = new Set<string>()
    for (const s of rows) {
      present.add(s.sandboxId)
      this.update(s)
    }
    for (const id of [...this.routes.keys()]) if (!present.has(id)) this.remove(id)
  }

  remove(sandboxId: string): void {
    const cluster = this.clusterOf(sandboxId) ?? null
    this.versionOf.delete(sandboxId)
    this.nodeOf.delete(sandboxId)
    this.clusters.delete(sandboxId)
    if (!this.routes.delete(sandboxId)) return
    this.publish(
      create(CatalogEventSchema, { event: { case: 'remove', value: sandboxId } }),
      cluster,
    )
  }

  get(sandboxId: string): Route | undefined {
    return this.routes.get(sandboxId)
  }

  /** The cluster of a sandbox the catalog holds (null: the API's own); undefined if it holds none. */
  clusterOf(sandboxId: string): string | null | undefined {
    return this.clusters.get(sandboxId)
  }

  /** Every route, or only those of one cluster (null: the API's own). */
  snapshot(cluster?: string | null): Route[] {
    const all = [...this.routes.values()]
    return cluster === undefined
      ? all
      : all.filter((r) => this.clusters.get(r.sandboxId) === cluster)
  }

  /** Calls `fn` for every later change, with its sandbox's cluster; returns the unsubscribe function. */
  subscribe(fn: (ev: CatalogEvent, cluster: string | null) => void): () => void {
    this.subscribers.add(fn)
    return () => this.subscribers.delete(fn)
  }

  private publish(ev: CatalogEvent, cluster: string | null): void {
    for (const fn of this.subscribers) fn(ev, cluster)
  }
}
