import { fileURLToPath } from 'node:url'
import {
  type InternalTls,
  type LocalNode,
  type Logger,
  NodeHost,
  schemeOf,
  WorkerGroup,
} from '@warren/shared'
import type { ListeningNodeProxy } from './server.js'
import type { NodeProxyWorkerInit } from './worker.js'

const WORKER_MAIN = fileURLToPath(new URL('./worker.js', import.meta.url))
/** The one node a node proxy worker reaches through its primary. */
export const WORKERS_NODE = 'node'

/**
 * The node proxy on `count` worker processes sharing its port: each
 * forwards itself, with the node's verdicts asked of this process once and
 * kept until the node says the sandbox changed, and new connections taking
 * their place in this process's connect windows (see NodeHost, RemoteNode).
 */
export async function startNodeProxyWorkers(
  node: LocalNode,
  opts: {
    host: string
    port: number
    secret: string
    tls?: InternalTls | undefined
    relay: boolean
    count: number
    log: Logger
  },
): Promise<ListeningNodeProxy> {
  const host = new NodeHost(new Map([[WORKERS_NODE, node]]))
  const group = new WorkerGroup<string>({
    name: 'node proxy worker',
    exec: WORKER_MAIN,
    count: opts.count,
    log: opts.log,
    attach: (channel, worker) => {
      const detach = host.serve(channel)
      const init: NodeProxyWorkerInit = {
        worker,
        host: opts.host,
        port: opts.port,
        secret: opts.secret,
        relay: opts.relay,
        ...(opts.tls ? { tls: opts.tls } : {}),
      }
      return { listening: channel.call<string>('init', init), detach }
    },
  })
  const [url] = await group.listen()
  return {
    url: url!.replace(/^http:/, `${schemeOf(opts.tls)}:`),
    close: () => group.close(),
  }
}
