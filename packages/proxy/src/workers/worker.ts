// A proxy worker process (node:cluster, started by workers/primary.ts): an
// edge server on the shared port whose catalog is a copy of the primary's
// and whose resumes, keepalive reports, route asks and local node lookups
// go to the primary, which does each once for all workers.
import {
  createLogger,
  type ProxyConfig,
  RemoteNode,
  SingleFlight,
  serveAsWorker,
  type WakeCredentials,
} from '@warren/shared'
import type { Route } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { createEdgeServer, type EdgeServer } from '../edge-server.js'
import { KeepaliveReporter } from '../keepalive/reporter.js'
import { EdgeMetrics } from '../metrics/edge-metrics.js'
import { CatalogCopy, routeFromWire, type WireChange, type WireRoute } from './catalog-copy.js'

/** What the primary tells a worker it starts. */
export interface WorkerInit {
  worker: number
  cfg: ProxyConfig & { domain: string }
  cluster: { secret: string; ca?: string | undefined }
  /** Node proxy URLs whose node lives in the primary. */
  localNodes: string[]
  catalog: { ready: boolean; following: boolean; routes: WireRoute[] }
}

/** A registry's metrics as data, what the primary sums across workers. */
export type MetricsJson = Awaited<ReturnType<EdgeMetrics['registry']['getMetricsAsJSON']>>

export interface WorkerListening {
  url: string
  caCertPath?: string
  caBundlePath?: string
}

serveAsWorker((primary) => {
  const catalog = new CatalogCopy(primary)
  const metrics = new EdgeMetrics((id) => catalog.isLive(id))
  const resumes = new SingleFlight<Route>()
  let edge: EdgeServer | undefined
  const nodes = new Map<string, RemoteNode>()

  primary
    .handle('catalog', (change: WireChange) => catalog.apply(change))
    .handle('nodeChanged', (url: string, sandboxId: string) => nodes.get(url)?.changed(sandboxId))
    .handle('init', (init: WorkerInit) => {
      // First, before anything else arrives: the changes that follow build on it.
      catalog.start(init.catalog)
      for (const url of init.localNodes) nodes.set(url, new RemoteNode(primary, url))
      const log = createLogger('proxy').child({ worker: init.worker })
      edge = createEdgeServer(init.cfg, log, init.cluster, {
        catalog,
        resumer: {
          resume: (sandboxId: string, creds: WakeCredentials) =>
            resumes.run(JSON.stringify([sandboxId, creds]), async () => {
              const route = routeFromWire(await primary.call<WireRoute>('resume', sandboxId, creds))
              catalog.put(route)
              return route
            }),
        },
        keepalive: new KeepaliveReporter(init.cfg.keepaliveIntervalMs, (id) =>
          primary.note('touch', id),
        ),
        metrics,
        renderMetrics: () => primary.call<string>('metrics'),
        localNodes: new Map([...nodes].map(([url, node]) => [url, node.resolve])),
        onNodeChange: (fn) => {
          for (const node of nodes.values()) node.onChange(fn)
        },
      })
      return edge.listen()
    })
    .handle('metricsJson', (): Promise<MetricsJson> => metrics.registry.getMetricsAsJSON())
  return { close: async () => edge?.close() }
})
