import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createRouterTransport, type Transport } from '@connectrpc/connect'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import {
  createInternalServer,
  errorInterceptor,
  type InternalTls,
  listen,
  requestIdInterceptor,
  requireClusterSecret,
  rpcLogInterceptor,
  schemeOf,
} from '@warren/shared'
import { OrchestratorService } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { NodeStatusInit } from '../cluster/status.js'
import { nodeMetrics } from '../metrics/registry.js'
import type { SandboxNode } from '../node.js'
import { bundleHandler } from '../transfer/http.js'
import { volumeContentHandler } from '../volumes/content/handler.js'
import { orchestratorService } from './service.js'

/** Calls made every few seconds per node or sandbox: not logged one by one. */
const QUIET_RPCS = new Set(['nodeInfo', 'list', 'get', 'getMetrics', 'getLogs'])

/** Outermost first: the caller's request id, then a log line per call, then the error contract. */
function interceptors(log: SandboxNode['log']) {
  return [
    requestIdInterceptor(),
    rpcLogInterceptor(log, QUIET_RPCS),
    errorInterceptor((err) => log.error({ err }, 'orchestrator rpc failed')),
  ]
}

export interface RpcOptions {
  host: string
  port: number
  /** What NodeInfo answers (the same status the heartbeats carry). */
  status: () => NodeStatusInit
  /** The cluster secret every caller must present. */
  secret: string
  /** The port's certificate: set, it serves HTTPS. */
  tls?: InternalTls | undefined
  /** Opens /metrics (and nothing else) to a scraper without the cluster secret. */
  metricsToken?: string | undefined
}

/**
 * Serves the orchestrator RPC (Connect, gRPC and gRPC-Web) on host:port,
 * and beside it the node's volume content API (`/volumecontent/…`), which
 * the API streams requests to, and its bundles for peers (`/bundles/…`). Every request must carry the cluster secret:
 * whoever can create and kill sandboxes here owns the node.
 */
export async function serveOrchestratorRpc(
  node: SandboxNode,
  opts: RpcOptions,
): Promise<{ server: Server; url: string }> {
  const log = node.log
  const content = volumeContentHandler({
    volumes: node.volumes,
    dataDir: node.cfg.dataDir,
    uidBase: node.cfg.uidBase,
    log,
  })
  const bundles = bundleHandler(node, log)
  const handler = connectNodeAdapter({
    routes: (router) => router.service(OrchestratorService, orchestratorService(node, opts.status)),
    interceptors: interceptors(log),
    // Only HTTP/1.1 is served here. Prometheus text of the node and its
    // sandboxes at /metrics, behind the same secret (or WARREN_METRICS_TOKEN).
    fallback: (req, res) => {
      if (req.url === '/metrics' && req.method === 'GET') {
        registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': registry.contentType })
            res.end(text)
          },
          (err: unknown) => {
            log.error({ err }, 'metrics failed')
            res.writeHead(500, { 'content-type': 'application/json' })
            res.end(JSON.stringify({ code: 500, message: 'internal error' }))
          },
        )
        return
      }
      if ((req.url ?? '').startsWith('/bundles/'))
        return bundles(req as IncomingMessage, res as ServerResponse)
      content(req as IncomingMessage, res as ServerResponse)
    },
  })
  const registry = nodeMetrics(node)
  const server = createInternalServer(
    requireClusterSecret(handler, {
      secret: opts.secret,
      what: 'the orchestrator RPC',
      ...(opts.metricsToken ? { extra: { '/metrics': [opts.metricsToken] } } : {}),
    }),
    opts.tls,
  )
  const url = await listen(server, opts.host, opts.port)
  return { server, url: url.replace(/^http:/, `${schemeOf(opts.tls)}:`) }
}

/** The same RPC without a network hop, for the all-in-one process. */
export function inProcessTransport(node: SandboxNode, status: () => NodeStatusInit): Transport {
  const log = node.log
  return createRouterTransport(
    (router) => router.service(OrchestratorService, orchestratorService(node, status)),
    {
      router: { interceptors: interceptors(log) },
    },
  )
}
