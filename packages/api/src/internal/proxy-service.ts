import { create } from '@bufbuild/protobuf'
import type { ServiceImpl } from '@connectrpc/connect'
import { WarrenError } from '@warren/shared'
import {
  type CatalogEvent,
  CatalogEventSchema,
  type ProxyService,
} from '@warren/shared/gen/warren/api/v1/proxy_pb'
import type { Catalog } from '../catalog/catalog.js'
import type { LifecycleEngine } from '../lifecycle/engine.js'
import type { Sandbox } from '../store/sandboxes.js'

/** Events a slow watcher may lag behind before it is cut off (it reconnects and gets a snapshot). */
const MAX_BACKLOG = 10_000

/**
 * The API's internal RPC for proxies. `fromStore` (several replicas): a
 * route asked for is read from the store, since a change committed on
 * another replica reaches this catalog only when its notification does — a
 * proxy asking right after a create or resume through another replica would
 * otherwise be told the sandbox does not exist, or is paused.
 */
export function proxyService(
  catalog: Catalog,
  engine: LifecycleEngine,
  fromStore?: (sandboxId: string) => Promise<Sandbox | undefined>,
): ServiceImpl<typeof ProxyService> {
  return {
    async *watchCatalog(_req, ctx) {
      const backlog: CatalogEvent[] = []
      let wake: (() => void) | undefined
      let overflow = false
      // Subscribe before taking the snapshot: nothing falls between the two.
      const unsubscribe = catalog.subscribe((ev) => {
        if (backlog.length >= MAX_BACKLOG) overflow = true
        else backlog.push(ev)
        wake?.()
      })
      const aborted = new Promise<void>((resolve) =>
        ctx.signal.addEventListener('abort', () => resolve()),
      )
      try {
        yield create(CatalogEventSchema, {
          event: { case: 'snapshot', value: { routes: catalog.snapshot() } },
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
    async getRoute(req) {
      // Asked on a miss or to confirm a refusal: with several replicas the
      // store, not this replica's catalog, has the last word.
      if (fromStore) {
        const row = await fromStore(req.sandboxId)
        if (row) catalog.update(row)
      }
      const route = catalog.get(req.sandboxId)
      return route ? { route } : {}
    },
    async resumeSandbox(req) {
      const sandbox = await engine.resumeForTraffic(req.sandboxId)
      return { route: catalog.get(sandbox.sandboxId) }
    },
    async keepAliveSandbox(req) {
      await engine.keepAlive(req.sandboxId)
      return {}
    },
  }
}
