import { createServer, type Server } from 'node:http'
import type { Transport } from '@connectrpc/connect'
import {
  createForwarder,
  handleWithRequestId,
  keepConnectionsLong,
  type Listening,
  type Logger,
  listenOn,
  type NodeResolver,
  type ProxyConfig,
} from '@warren/shared'
import { RouteCatalog } from './catalog/route-catalog.js'
import { KeepaliveReporter } from './keepalive/reporter.js'
import { EdgeMetrics, serveEdgeMetrics } from './metrics/edge-metrics.js'
import { Resumer } from './resume/resumer.js'
import { createEdgeResolver } from './routing/resolve.js'
import { SignatureRoutes } from './routing/signatures.js'
import { edgeCertificates } from './tls/certificates.js'
import { acceptTlsToo, type SamePortTls } from './tls/same-port.js'

/** How often the TLS server takes the current default certificate (renewed daily by the CA source). */
const RENEW_DEFAULT_CERT_MS = 3_600_000

export interface EdgeProxy {
  catalog: RouteCatalog
  server: Server
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
 */
export function createEdgeProxy(
  cfg: ProxyConfig & { domain: string },
  transport: Transport,
  log: Logger,
  cluster: { secret: string; ca?: string | undefined },
  localNodes?: Map<string, NodeResolver>,
): EdgeProxy {
  const catalog = new RouteCatalog(transport, log)
  const metrics = new EdgeMetrics((id) => catalog.isLive(id))
  const keepalive = new KeepaliveReporter(catalog.client, cfg.keepaliveIntervalMs, log, (id) =>
    metrics.keepaliveReported(id),
  )
  const metricsCallers = [cluster.secret, ...(cfg.metricsToken ? [cfg.metricsToken] : [])]
  const resumer = new Resumer(catalog.client, catalog)
  const resolver = createEdgeResolver({
    catalog,
    trustedHops: cfg.trustedHops,
    resumer,
    keepalive,
    signatures: new SignatureRoutes(catalog),
    localNodes,
    clusterSecret: cluster.secret,
    clusterCa: cluster.ca,
  })
  const forwarder = createForwarder(resolver.resolve)
  // Each request gets its id here (the client's if valid): the node proxy,
  // the sandbox and the API's ResumeSandbox see the same one.
  const server = createServer((req, res) => {
    if (serveEdgeMetrics(req, res, metrics, metricsCallers)) return
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
  let secure: SamePortTls | undefined
  let listening: Listening | undefined
  let renew: NodeJS.Timeout | undefined
  const proxy: EdgeProxy = {
    catalog,
    server,
    tls: {},
    async listen() {
      const { certificates, tlsOptions, serves } = await edgeCertificates(cfg)
      secure = acceptTlsToo(server, tlsOptions, serves)
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
      proxy.tls = {
        ...(certificates.caCertPath ? { caCertPath: certificates.caCertPath } : {}),
        ...(certificates.caBundlePath ? { caBundlePath: certificates.caBundlePath } : {}),
      }
      catalog.start()
      return listening.url
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
      secure?.close()
      await closed
      await forwarder.close()
      keepalive.stop()
      await catalog.stop()
    },
  }
  return proxy
}
