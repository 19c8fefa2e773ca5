import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createRouterTransport, type Transport } from '@connectrpc/connect'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import { errorInterceptor, keepConnectionsLong, listen } from '@warren/shared'
import { OrchestratorService } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { SandboxNode } from '../node.js'
import { volumeContentHandler } from '../volumes/content/handler.js'
import { orchestratorService } from './service.js'

/**
 * Serves the orchestrator RPC (Connect, gRPC and gRPC-Web) on host:port,
 * and beside it the node's volume content API (`/volumecontent/…`), which
 * the API streams requests to.
 */
export async function serveOrchestratorRpc(
  node: SandboxNode,
  opts: { host: string; port: number; proxyUrl: string },
): Promise<{ server: Server; url: string }> {
  const log = node.log
  const content = volumeContentHandler({
    volumes: node.volumes,
    dataDir: node.cfg.dataDir,
    uidBase: node.cfg.uidBase,
    log,
  })
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(OrchestratorService, orchestratorService(node, opts.proxyUrl)),
    interceptors: [errorInterceptor((err) => log.error({ err }, 'orchestrator rpc failed'))],
    // Only HTTP/1.1 is served here (createServer).
    fallback: (req, res) => content(req as IncomingMessage, res as ServerResponse),
  })
  const server = createServer(handler)
  keepConnectionsLong(server)
  return { server, url: await listen(server, opts.host, opts.port) }
}

/** The same RPC without a network hop, for the all-in-one process. */
export function inProcessTransport(node: SandboxNode, proxyUrl: string): Transport {
  const log = node.log
  return createRouterTransport(
    (router) => router.service(OrchestratorService, orchestratorService(node, proxyUrl)),
    {
      router: {
        interceptors: [errorInterceptor((err) => log.error({ err }, 'orchestrator rpc failed'))],
      },
    },
  )
}
