// A node proxy worker process (node:cluster, started by workers.ts): the
// node proxy's server on the shared port, whose verdicts and connect
// windows are the primary's node's.
import type { Server } from 'node:http'
import {
  closeServer,
  createLogger,
  type InternalTls,
  listen,
  RemoteNode,
  serveAsWorker,
} from '@warren/shared'
import { createNodeProxyServer } from './server.js'
import { WORKERS_NODE } from './workers.js'

/** What the primary tells a node proxy worker it starts. */
export interface NodeProxyWorkerInit {
  worker: number
  host: string
  port: number
  secret: string
  relay: boolean
  tls?: InternalTls
}

serveAsWorker((primary) => {
  const node = new RemoteNode(primary, WORKERS_NODE)
  let server: Server | undefined
  primary
    .handle('nodeChanged', (_url: string, sandboxId: string) => node.changed(sandboxId))
    .handle('init', (init: NodeProxyWorkerInit) => {
      server = createNodeProxyServer(
        { edge: node.resolve, direct: node.resolveDirect },
        {
          secret: init.secret,
          tls: init.tls,
          relay: init.relay,
          log: createLogger('orchestrator').child({ nodeProxyWorker: init.worker }),
        },
      )
      return listen(server, init.host, init.port)
    })
  return { close: async () => server && closeServer(server) }
})
