import { fileURLToPath } from 'node:url'
import {
  type Channel,
  type LocalNode,
  type Logger,
  NodeHost,
  type ProxyConfig,
  type WakeCredentials,
  WorkerGroup,
} from '@warren/shared'
import { RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { AggregatorRegistry } from 'prom-client'
import type { RouteCatalog } from '../catalog/route-catalog.js'
import type { KeepaliveReporter } from '../keepalive/reporter.js'
import type { EdgeMetrics } from '../metrics/edge-metrics.js'
import type { Resumer } from '../resume/resumer.js'
import { edgeCertificates } from '../tls/certificates.js'
import { changeToWire, routeToWire, type WireRoute } from './catalog-copy.js'
import type { MetricsJson, WorkerInit, WorkerListening } from './worker.js'

const WORKER_MAIN = fileURLToPath(new URL('./worker.js', import.meta.url))

export interface ProxyWorkers {
  /** Starts the workers; resolves once all listen, with the first's URL and the TLS files. */
  listen(): Promise<WorkerListening>
  close(): Promise<void>
}

/**
 * The primary of the edge's worker processes (node:cluster: the primary
 * accepts each connection and hands it to the next worker in turn). The
 * workers parse and forward; what must happen once stays here: the one
 * catalog stream (each change is sent to every worker, in order), keepalive
 * reports (a worker's reports pass through this reporter, so there is at
 * most one per sandbox per interval across all of them), resumes (one
 * in-flight resume per sandbox and credentials, whichever worker asks),
 * route asks and confirmations, and the local node of an all-in-one (its
 * state and connect windows: see NodeHost in @warren/shared). A worker that
 * dies is started again (bounded); its places in connect windows are freed.
 */
export function startProxyWorkers(
  cfg: ProxyConfig & { domain: string },
  log: Logger,
  clusterCreds: { secret: string; ca?: string | undefined },
  parts: {
    catalog: RouteCatalog
    resumer: Resumer
    keepalive: KeepaliveReporter
    metrics: EdgeMetrics
    localNodes?: Map<string, LocalNode> | undefined
  },
): ProxyWorkers {
  const { catalog, resumer, keepalive, metrics } = parts
  const nodeHost = new NodeHost(parts.localNodes ?? new Map<string, LocalNode>())

  async function renderMetrics(): Promise<string> {
    const all: MetricsJson[] = [await metrics.registry.getMetricsAsJSON()]
    for (const c of group.channels())
      all.push(await c.call<MetricsJson>('metricsJson').catch(() => []))
    return AggregatorRegistry.aggregate(all).metrics()
  }

  function attach(channel: Channel, workerId: number) {
    channel
      .handle('lookup', async (id: string): Promise<WireRoute | null> => {
        const r = await catalog.lookup(id)
        return r ? routeToWire(r) : null
      })
      .handle('confirm', async (id: string): Promise<WireRoute | null> => {
        const r = await catalog.confirm(id)
        return r ? routeToWire(r) : null
      })
      .handle('caughtUp', () => undefined)
      .handle('noteMiss', (id: string) => catalog.noteMiss(id))
      .handle('resume', async (id: string, creds: WakeCredentials) => {
        // The worker's copy may not hold yet what a resume that just ended
        // brought (its change is on the way): the sandbox serves, so no
        // second ResumeSandbox. The worker judged the credentials already.
        const known = await catalog.lookup(id)
        if (known?.state === RouteState.RUNNING) return routeToWire(known)
        return routeToWire(await resumer.resume(id, creds))
      })
      .handle('touch', (id: string) => keepalive.touch(id))
      .handle('metrics', () => renderMetrics())
    // The state and then every change after it, in order on one channel.
    const { ready, following, routes } = catalog.current()
    const detachers = [
      catalog.onChange((c) => channel.note('catalog', changeToWire(c))),
      nodeHost.serve(channel),
    ]
    const init: WorkerInit = {
      worker: workerId,
      cfg,
      cluster: clusterCreds,
      localNodes: [...(parts.localNodes?.keys() ?? [])],
      catalog: { ready, following, routes: routes.map(routeToWire) },
    }
    return {
      listening: channel.call<WorkerListening>('init', init),
      detach: () => {
        for (const d of detachers) d()
      },
    }
  }

  const group = new WorkerGroup<WorkerListening>({
    name: 'proxy worker',
    exec: WORKER_MAIN,
    count: cfg.workers,
    log,
    attach,
  })

  return {
    async listen() {
      // Warren's CA is made here, once, before workers that would all make it.
      const { certificates } = await edgeCertificates(cfg)
      const [first] = await group.listen()
      return {
        ...first!,
        ...(certificates.caCertPath ? { caCertPath: certificates.caCertPath } : {}),
        ...(certificates.caBundlePath ? { caBundlePath: certificates.caBundlePath } : {}),
      }
    },
    close: () => group.close(),
  }
}
