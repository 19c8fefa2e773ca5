import type { Transport } from '@connectrpc/connect'
import type { LocalNode, Logger, ProxyConfig } from '@warren/shared'
import { RouteCatalog } from './catalog/route-catalog.js'
import { createEdgeServer } from './edge-server.js'
import { KeepaliveReporter, reportKeepalive } from './keepalive/reporter.js'
import { EdgeMetrics } from './metrics/edge-metrics.js'
import { Resumer } from './resume/resumer.js'
import { startProxyWorkers } from './workers/primary.js'

export interface EdgeProxy {
  catalog: RouteCatalog
  /** How many processes accept the edge's connections (1: this one). */
  workers: number
  /** Listens (HTTP and HTTPS on one port); resolves with the plain-HTTP base URL. */
  listen(): Promise<string>
  /** After listen: the CA clients trust for HTTPS, when it is Warren's own. */
  tls: { caCertPath?: string; caBundlePath?: string }
  close(): Promise<void>
}

/**
 * The edge proxy: routes sandbox traffic (Host `{port}-{id}.{domain}` or the
 * E2b-Sandbox-Id/-Port headers) to the node proxy of the sandbox's node, as
 * the API's catalog says. Plain HTTP and TLS share its port (the SDK's
 * `https://${getHost(port)}` and E2B_SANDBOX_URL's `http://` both work).
 * `transport` reaches the API's internal RPC.
 *
 * With `cfg.workers` > 1 this process is the primary of that many worker
 * processes that accept and forward the connections; what must happen once
 * (the catalog stream, keepalive reports, resumes, local node lookups) stays
 * here and the workers ask for it (see workers/primary.ts).
 */
export function createEdgeProxy(
  cfg: ProxyConfig & { domain: string },
  transport: Transport,
  log: Logger,
  cluster: { secret: string; ca?: string | undefined },
  localNodes?: Map<string, LocalNode>,
): EdgeProxy {
  const catalog = new RouteCatalog(transport, log)
  const metrics = new EdgeMetrics((id) => catalog.isLive(id))
  const keepalive = new KeepaliveReporter(
    cfg.keepaliveIntervalMs,
    reportKeepalive(catalog.client, log, (id) => metrics.keepaliveReported(id)),
  )
  const resumer = new Resumer(catalog.client, catalog)
  const parts = { catalog, resumer, keepalive, metrics }
  if (cfg.workers > 1) {
    const workers = startProxyWorkers(cfg, log, cluster, { ...parts, localNodes })
    const proxy: EdgeProxy = {
      catalog,
      workers: cfg.workers,
      tls: {},
      async listen() {
        catalog.start()
        const { url, ...tls } = await workers.listen()
        proxy.tls = tls
        return url
      },
      async close() {
        await workers.close()
        keepalive.stop()
        await catalog.stop()
      },
    }
    return proxy
  }
  const edge = createEdgeServer(cfg, log, cluster, {
    ...parts,
    renderMetrics: () => metrics.registry.metrics(),
    localNodes: localNodes && new Map([...localNodes].map(([url, n]) => [url, n.resolve])),
    onNodeChange: (fn) => {
      for (const n of localNodes?.values() ?? []) n.onChange(fn)
    },
  })
  const proxy: EdgeProxy = {
    catalog,
    workers: 1,
    tls: {},
    async listen() {
      const { url, ...tls } = await edge.listen()
      proxy.tls = tls
      catalog.start()
      return url
    },
    async close() {
      await edge.close()
      keepalive.stop()
      await catalog.stop()
    },
  }
  return proxy
}
