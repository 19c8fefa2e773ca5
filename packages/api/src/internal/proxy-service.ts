import { create } from '@bufbuild/protobuf'
import type { ServiceImpl } from '@connectrpc/connect'
import { refuseWake, WarrenError } from '@warren/shared'
import {
  type CatalogEvent,
  CatalogEventSchema,
  type ProxyService,
  type ResumeSandboxRequest,
  type Route,
} from '@warren/shared/gen/warren/api/v1/proxy_pb'
import type { Catalog } from '../catalog/catalog.js'
import type { LifecycleEngine } from '../lifecycle/engine.js'
import type { Sandbox } from '../store/sandboxes.js'
import { callerOf } from './callers.js'

/** Events a slow watcher may lag behind before it is cut off (it reconnects and gets a snapshot). */
const MAX_BACKLOG = 10_000

/**
 * The API's internal RPC for proxies. Each caller is an edge of one cluster
 * (the secret it showed, see callers.ts) and sees only that cluster's
 * sandboxes: its catalog stream, its routes, its resumes and keepalives;
 * another cluster's sandbox does not exist for it. `routesFromStore` (several
 * replicas): a route asked for is read from the store, since a change
 * committed on another replica reaches this catalog only when its
 * notification does — a proxy asking right after a create or resume through
 * another replica would otherwise be told the sandbox does not exist, or is
 * paused.
 */
export function proxyService(
  catalog: Catalog,
  engine: LifecycleEngine,
  store: {
    read: (sandboxId: string) => Promise<Sandbox | undefined>
    routesFromStore: boolean
  },
): ServiceImpl<typeof ProxyService> {
  return {
    async *watchCatalog(_req, ctx) {
      const { cluster } = callerOf(ctx)
      const backlog: CatalogEvent[] = []
      let wake: (() => void) | undefined
      let overflow = false
      // Subscribe before taking the snapshot: nothing falls between the two.
      const unsubscribe = catalog.subscribe((ev, of) => {
        if (of !== cluster) return
        if (backlog.length >= MAX_BACKLOG) overflow = true
        else backlog.push(ev)
        wake?.()
      })
      const aborted = new Promise<void>((resolve) =>
        ctx.signal.addEventListener('abort', () => resolve()),
      )
      try {
        yield create(CatalogEventSchema, {
          event: { case: 'snapshot', value: { routes: catalog.snapshot(cluster) } },
        })
        while (!ctx.signal.aborted) {
          if (overflow)
            throw new WarrenError('unavailable', 'catalog watcher fell behind; reconnect')
          const ev = backlog.shift()
          if (ev) {
            yield ev
            continue
          }
          await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted])
          wake = undefined
        }
      } finally {
        unsubscribe()
      }
    },
    async getRoute(req, ctx) {
      const { cluster } = callerOf(ctx)
      // Asked on a miss or to confirm a refusal: with several replicas the
      // store, not this replica's catalog, has the last word.
      if (store.routesFromStore) {
        const row = await store.read(req.sandboxId)
        if (row) catalog.update(row)
      }
      if (catalog.clusterOf(req.sandboxId) !== cluster) return {}
      const route = catalog.get(req.sandboxId)
      return route ? { route } : {}
    },
    async resumeSandbox(req, ctx) {
      const { cluster } = callerOf(ctx)
      const s = await store.read(req.sandboxId)
      if (!s || s.cluster !== cluster || s.state === 'creating')
        throw new WarrenError('not_found', `sandbox ${req.sandboxId} not found`)
      catalog.update(s)
      // Nothing to wake: the route as it is, which the edge follows or refuses.
      const asleep = s.state === 'paused' || s.state === 'pausing' || s.state === 'resuming'
      if (!asleep || !s.lifecycle.autoResume) return routeOf(catalog, s)
      // Tokens survive pauses: the row read now judges the request for the resume to come.
      const why = refuseWake(s, credentialsOf(req))
      if (why)
        throw new WarrenError(
          'forbidden',
          why === 'traffic_token'
            ? `missing or invalid e2b-traffic-access-token: it may not resume sandbox ${s.sandboxId}`
            : `missing or invalid X-Access-Token: it may not resume sandbox ${s.sandboxId}`,
        )
      const running = await engine.resumeForTraffic(s.sandboxId)
      catalog.update(running)
      return routeOf(catalog, running)
    },
    async keepAliveSandbox(req, ctx) {
      await engine.keepAlive(req.sandboxId, callerOf(ctx).cluster)
      return {}
    },
  }
}

function routeOf(catalog: Catalog, s: Sandbox): { route?: Route } {
  const route = catalog.get(s.sandboxId)
  return route ? { route } : {}
}

function credentialsOf(req: ResumeSandboxRequest) {
  return {
    port: req.port,
    envdAccessToken: req.envdAccessToken,
    trafficAccessToken: req.trafficAccessToken,
    signedFiles: req.signedFiles,
  }
}
