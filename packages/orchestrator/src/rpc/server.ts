import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createRouterTransport, type Transport } from '@connectrpc/connect'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import {
  createInternalServer,
  errorInterceptor,
  type InternalTls,
  listen,
  requireClusterSecret,
  schemeOf,
} from '@warren/shared'
import { OrchestratorService } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { NodeStatusInit } from '../cluster/status.js'
import type { SandboxNode } from '../node.js'
import { bundleHandler } from '../transfer/http.js'
import { volumeContentHandler } from '../volumes/content/handler.js'
import { orchestratorService } from './service.js'

export interface RpcOptions {
  host: string
  port: number
  /** What NodeInfo answers (the same status the heartbeats carry). */
  status: () => NodeStatusInit
  /** The cluster secret every caller must present. */
  secret: string
  /** The port's certificate: set, it serves HTTPS. */
  tls?: InternalTls | undefined
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
    interceptors: [errorInterceptor((err) => log.error({ err }, 'orchestrator rpc failed'))],
    // Only HTTP/1.1 is served here.
    fallback: (req, res) =>
      (req.url ?? '').startsWith('/bundles/')
        ? bundles(req as IncomingMessage, res as ServerResponse)
        : content(req as IncomingMessage, res as ServerResponse),
  })
  const server = createInternalServer(
    requireClusterSecret(handler, { secret: opts.secret, what: 'the orchestrator RPC' }),
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
      router: {
        interceptors: [errorInterceptor((err) => log.error({ err }, 'orchestrator rpc failed'))],
      },
    },
  )
}
