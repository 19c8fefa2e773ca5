import { createServer, type Server } from 'node:http'
import type { Transport } from '@connectrpc/connect'
import {
  createForwarder,
  keepConnectionsLong,
  type Logger,
  listen,
  type NodeResolver,
  type ProxyConfig,
} from '@warren/shared'
import { RouteCatalog } from './catalog/route-catalog.js'
import { KeepaliveReporter } from './keepalive/reporter.js'
import { Resumer } from './resume/resumer.js'
import { createEdgeResolver } from './routing/resolve.js'
import { SignatureRoutes } from './routing/signatures.js'

export interface EdgeProxy {
  catalog: RouteCatalog
  server: Server
  listen(): Promise<string>
  close(): Promise<void>
}

/**
 * The edge proxy: routes sandbox traffic (Host `{port}-{id}.{domain}` or the
 * E2b-Sandbox-Id/-Port headers) to the node proxy of the sandbox's node, as
 * the API's catalog says. `transport` reaches the API's internal RPC.
 */
export function createEdgeProxy(
  cfg: ProxyConfig,
  transport: Transport,
  log: Logger,
  localNodes?: Map<string, NodeResolver>,
): EdgeProxy {
  const catalog = new RouteCatalog(transport, log)
  const keepalive = new KeepaliveReporter(catalog.client, cfg.keepaliveIntervalMs, log)
  const resumer = new Resumer(catalog.client, catalog)
  const resolver = createEdgeResolver({
    catalog,
    trustedHops: cfg.trustedHops,
    resumer,
    keepalive,
    signatures: new SignatureRoutes(catalog),
    localNodes,
    nodeProxySecret: cfg.nodeProxySecret,
  })
  const forwarder = createForwarder(resolver.resolve)
  const server = createServer((req, res) => void forwarder.onRequest(req, res))
  server.on('upgrade', (req, socket, head) => void forwarder.onUpgrade(req, socket, head))
  keepConnectionsLong(server)
  return {
    catalog,
    server,
    async listen() {
      catalog.start()
      return listen(server, cfg.listenHost, cfg.port)
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await forwarder.close()
      keepalive.stop()
      await catalog.stop()
    },
  }
}
