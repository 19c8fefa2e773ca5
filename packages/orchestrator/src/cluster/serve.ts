import { availableParallelism } from 'node:os'
import {
  CleanupStack,
  closeServer,
  clusterTransport,
  type InternalTls,
  type Logger,
  readClusterCa,
  readInternalTls,
  resolveClusterSecret,
} from '@warren/shared'
import type { SandboxNode } from '../node.js'
import { listenNodeProxy } from '../nodeproxy/server.js'
import { serveOrchestratorRpc } from '../rpc/server.js'
import { advertisedUrl, checkAdvertisable } from './addresses.js'
import { type Heartbeats, startHeartbeats } from './heartbeat.js'
import { type NodeStatusInit, nodeStatusSource } from './status.js'

export interface ServedNode {
  rpcUrl: string
  proxyUrl: string
  /** What heartbeats and NodeInfo say of the node. */
  status: () => NodeStatusInit
  secret: string
  stop(): Promise<void>
}

/**
 * A started node's ports: the node proxy and the RPC, both behind the
 * cluster secret (and TLS with WARREN_INTERNAL_TLS_CERT/KEY), and its
 * heartbeats to the API when WARREN_API_INTERNAL_URL is set. An exited
 * sandbox is heartbeated at once. What is open is closed again if a later
 * step fails.
 */
export async function serveNode(
  node: SandboxNode,
  log: Logger,
  opts: {
    secret?: string
    tls?: InternalTls | undefined
    /** false: no heartbeats (the all-in-one's API polls its node in process). */
    register?: boolean
    /** The node proxy's workers when the configuration names none. */
    defaultNodeProxyWorkers?: number
  } = {},
): Promise<ServedNode> {
  const cfg = node.cfg
  const secret = opts.secret ?? resolveClusterSecret(cfg)
  const tls = opts.tls ?? readInternalTls(cfg)
  const registering = !!cfg.apiInternalUrl && opts.register !== false
  if (registering) checkAdvertisable(cfg.listenHost, cfg.advertiseHost)
  // Peers fetch each other's snapshots over their RPC ports, as the control plane calls them.
  node.snapshots.usePeerAuth({ secret, ca: readClusterCa(cfg.clusterCa) })
  const cleanup = new CleanupStack()
  try {
    const nodeProxy = await listenNodeProxy(node, {
      host: cfg.listenHost,
      port: cfg.nodeProxyPort,
      secret,
      tls,
      workers: cfg.nodeProxyWorkers ?? opts.defaultNodeProxyWorkers ?? availableParallelism(),
      relay: cfg.proxyRelay,
    })
    cleanup.push('node proxy', () => nodeProxy.close())
    const urls = {
      rpcUrl: '',
      proxyUrl: advertisedUrl(nodeProxy.url, cfg.listenHost, cfg.advertiseHost),
    }
    const status = nodeStatusSource(node, urls)
    const rpc = await serveOrchestratorRpc(node, {
      host: cfg.listenHost,
      port: cfg.rpcPort,
      status,
      secret,
      tls,
      metricsToken: cfg.metricsToken,
    })
    cleanup.push('rpc', () => closeServer(rpc.server))
    urls.rpcUrl = advertisedUrl(rpc.url, cfg.listenHost, cfg.advertiseHost)
    let heartbeats: Heartbeats | undefined
    if (cfg.apiInternalUrl && registering) {
      const ca = readClusterCa(cfg.clusterCa)
      heartbeats = startHeartbeats({
        transports: cfg.apiInternalUrl
          .split(',')
          .map((u) => u.trim())
          .filter(Boolean)
          .map((u) => clusterTransport(u, { secret, ca })),
        status,
        intervalMs: cfg.heartbeatIntervalMs,
        log,
      })
      const hb = heartbeats
      node.exits.onExit(() => hb.kick())
    }
    cleanup.release()
    return {
      ...urls,
      status,
      secret,
      async stop() {
        await heartbeats?.stop()
        await Promise.all([closeServer(rpc.server), nodeProxy.close()])
      },
    }
  } catch (err) {
    await cleanup.run()
    throw err
  }
}
