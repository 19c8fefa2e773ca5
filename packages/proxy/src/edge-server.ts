import { createServer, type Server } from 'node:http'
import type { WakeCredentials } from '@warren/shared'
import {
  createForwarder,
  createRelay,
  handleWithRequestId,
  keepConnectionsLong,
  type Listening,
  type Logger,
  listenOn,
  llhttpAvailable,
  type NativePins,
  type NodeResolver,
  nativePins,
  type ProxyConfig,
  type Relay,
} from '@warren/shared'
import type { Route } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import type { Catalog, CatalogChange } from './catalog/route-catalog.js'
import { asksEdgeMetrics, type EdgeMetrics, serveEdgeMetrics } from './metrics/edge-metrics.js'
import { createEdgeResolver } from './routing/resolve.js'
import { SignatureRoutes } from './routing/signatures.js'
import { edgeCertificates } from './tls/certificates.js'
import { acceptTlsToo, type SamePortTls } from './tls/same-port.js'

/** How often the TLS server takes the current default certificate (renewed daily by the CA source). */
const RENEW_DEFAULT_CERT_MS = 3_600_000

/**
 * What an edge server routes with: in one process the catalog, resumer and
 * keepalive reporter themselves; in a proxy worker, stand-ins that ask the
 * primary for what must happen once (see workers/).
 */
export interface EdgeParts {
  catalog: Catalog
  resumer: { resume(sandboxId: string, creds: WakeCredentials): Promise<Route> }
  keepalive: { touch(sandboxId: string): void }
  metrics: EdgeMetrics
  /** The text of `GET /metrics` (a worker's is every worker's and the primary's, summed). */
  renderMetrics: () => Promise<string>
  localNodes?: Map<string, NodeResolver> | undefined
  /** Subscribes to the local nodes' changes (LocalNode.onChange): their verdicts may differ now. */
  onNodeChange?: ((fn: (sandboxId: string) => void) => void) | undefined
}

export interface EdgeServer {
  server: Server
  /** Listens (HTTP and HTTPS on one port); resolves with the plain-HTTP base URL. */
  listen(): Promise<{ url: string; caCertPath?: string; caBundlePath?: string }>
  close(): Promise<void>
}

/**
 * The edge's HTTP server on its port, plain and TLS alike: requests and
 * upgrades resolved by the edge resolver over `parts`, then forwarded.
 */
export function createEdgeServer(
  cfg: ProxyConfig & { domain: string },
  log: Logger,
  cluster: { secret: string; ca?: string | undefined },
  parts: EdgeParts,
): EdgeServer {
  const { metrics } = parts
  const metricsCallers = [cluster.secret, ...(cfg.metricsToken ? [cfg.metricsToken] : [])]
  const resolver = createEdgeResolver({
    catalog: parts.catalog,
    trustedHops: cfg.trustedHops,
    resumer: parts.resumer,
    keepalive: parts.keepalive,
    signatures: new SignatureRoutes(parts.catalog),
    localNodes: parts.localNodes,
    clusterSecret: cluster.secret,
    clusterCa: cluster.ca,
  })
  const forwarder = createForwarder(resolver.resolve)
  // Connections pinned to a sandbox's route (see NativePins) let go of it
  // when the catalog or its node says it changed, as pending answers end.
  const wantsPins = cfg.relay && cfg.nativeRelay && llhttpAvailable
  const pins = wantsPins ? nativePins() : undefined
  parts.catalog.onChange((change) => {
    resolver.pending.apply(change)
    if (pins) releasePins(pins, change)
  })
  if (wantsPins && !pins)
    log.warn(
      'the native relay is not built (packages/shared/native): requests are relayed in JavaScript',
    )
  if (pins) {
    parts.onNodeChange?.((sandboxId) => pins.release(sandboxId))
    metrics.followPins(pins)
  }
  // Each request gets its id here (the client's if valid): the node proxy,
  // the sandbox and the API's ResumeSandbox see the same one.
  const server = createServer((req, res) => {
    if (
      serveEdgeMetrics(req, res, metrics.registry.contentType, parts.renderMetrics, metricsCallers)
    )
      return
    metrics.watch(res)
    handleWithRequestId(req, res, log, () => void forwarder.onRequest(req, res))
  })
  server.on('upgrade', (req, socket, head) => {
    metrics.upgraded()
    handleWithRequestId(
      req,
      undefined,
      undefined,
      () => void forwarder.onUpgrade(req, socket, head),
    )
  })
  keepConnectionsLong(server)
  // Plain requests take the relay (see createRelay); the rest, this server.
  const relay: Relay | undefined =
    cfg.relay && llhttpAvailable
      ? createRelay({
          resolve: resolver.resolve,
          servedByServer: asksEdgeMetrics,
          observe: () => metrics.started(),
          log,
          pins,
          record: (status, seconds) => metrics.record(status, seconds),
        })
      : undefined
  let secure: SamePortTls | undefined
  let listening: Listening | undefined
  let renew: NodeJS.Timeout | undefined
  return {
    server,
    async listen() {
      const { certificates, tlsOptions, serves } = await edgeCertificates(cfg)
      secure = acceptTlsToo(
        server,
        tlsOptions,
        serves,
        relay && ((socket, first, toHttp) => relay.accept(socket, first, toHttp)),
      )
      // The certificate for clients that name no host is short-lived: follow its renewals.
      const tlsServer = secure.tls
      renew = setInterval(() => {
        certificates.fallback().then(
          (fallback) => tlsServer.setSecureContext(fallback),
          (err: unknown) => log.warn({ err }, 'tls: renewing the default certificate failed'),
        )
      }, RENEW_DEFAULT_CERT_MS).unref()
      secure.tls.on('tlsClientError', (err) => log.debug({ err }, 'tls handshake refused'))
      listening = await listenOn(server, cfg.port, cfg.listenHost, (host, err) =>
        log.warn({ host, err: err.message }, 'not listening on this loopback'),
      )
      return {
        url: listening.url,
        ...(certificates.caCertPath ? { caCertPath: certificates.caCertPath } : {}),
        ...(certificates.caBundlePath ? { caBundlePath: certificates.caBundlePath } : {}),
      }
    },
    async close() {
      clearInterval(renew)
      // Every listener stops accepting, then every connection is ended
      // (a listener's close waits for the connections it accepted).
      const closed = Promise.all([
        listening?.close(),
        new Promise<void>((resolve) => server.close(() => resolve())),
      ])
      server.closeAllConnections()
      relay?.close()
      secure?.close()
      await closed
      await forwarder.close()
    },
  }
}

/** The pins a catalog change may have made wrong: its sandbox's, or all on a new snapshot. */
function releasePins(pins: NativePins, change: CatalogChange): void {
  switch (change.kind) {
    case 'upsert':
      pins.release(change.route.sandboxId)
      return
    case 'remove':
      pins.release(change.sandboxId)
      return
    case 'snapshot':
      pins.releaseAll()
      return
  }
}
