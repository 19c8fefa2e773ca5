import { join } from 'node:path'
import { createApiService } from '@warren/api'
import { createNode, inProcessTransport, localNode, serveNode } from '@warren/orchestrator'
import { createEdgeProxy } from '@warren/proxy'
import {
  clusterDir,
  componentLogger,
  createLogger,
  loadApiConfig,
  loadOrCreateClusterSecret,
  loadOrchestratorConfig,
  loadProxyConfig,
  WarrenError,
} from '@warren/shared'
import type { Command } from 'commander'
import { readFirstKey, saveFirstKey } from '../lib/first-key.js'
import { sdkVariables } from '../lib/sdk-banner.js'
import { ensureTemplate } from './template.js'

/**
 * The all-in-one: api + orchestrator + proxy in one process with embedded
 * defaults (SQLite, in-memory catalog, one node), wired together through the
 * same interfaces a multi-node deployment uses over the network.
 */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description('start Warren on this machine (API :3000, proxy :3002, orchestrator :5008)')
    .option('--host <host>', 'listen address of the API and the proxy (default: 127.0.0.1 and ::1)')
    .action(async (opts: { host?: string }) => {
      const log = createLogger('warren')
      await ensureTemplate('base', { quietIfCurrent: true })
      const up = await startAllInOne({ ...(opts.host ? { listenHost: opts.host } : {}) }, log)
      process.stdout.write(up.banner)
      const shutdown = async () => {
        await up.stop()
        process.exit(0)
      }
      process.once('SIGTERM', shutdown)
      process.once('SIGINT', shutdown)
    })
}

export async function startAllInOne(
  overrides: { listenHost?: string },
  log = createLogger('warren'),
) {
  const ocfg = loadOrchestratorConfig()
  const pcfg = loadProxyConfig(overrides)
  const acfg = loadApiConfig({ ...overrides, domain: pcfg.domain })

  // The all-in-one is its own cluster: its secret is made once (0600) and
  // kept with its data, unless one is configured.
  const secret =
    acfg.clusterSecret ??
    loadOrCreateClusterSecret(acfg.clusterSecretFile ?? join(clusterDir(acfg.dataDir), 'secret'))

  const node = createNode(ocfg, { log: componentLogger(log, 'orchestrator') })
  await node.start()
  const served = await serveNode(node, componentLogger(log, 'orchestrator'), {
    secret,
    register: false,
    defaultNodeProxyWorkers: 1,
  }).catch(async (err: unknown) => {
    await node.stop()
    throw err
  })
  const nodeProxy = { url: served.proxyUrl }
  const rpc = { url: served.rpcUrl }

  // In process for the RPC; the volume content API streams over the node's own port.
  const api = await createApiService(
    acfg,
    componentLogger(log, 'api'),
    [{ transport: inProcessTransport(node, served.status), url: rpc.url }],
    { clusterSecret: secret },
  )
  const { url: apiUrl } = await api.listen()
  if (api.createdKey) saveFirstKey(acfg.dataDir, api.createdKey)
  const key = api.createdKey ?? readFirstKey(acfg.dataDir)

  // The edge reaches the in-process node without a hop; other nodes through their node proxy.
  const proxy = createEdgeProxy(
    pcfg,
    api.proxyTransport,
    componentLogger(log, 'proxy'),
    { secret },
    new Map([[nodeProxy.url, localNode(node)]]),
  )
  const proxyUrl = await proxy.listen()
  const { caCertPath, caBundlePath } = proxy.tls

  const banner = [
    '',
    'Warren is up.',
    `  API            ${apiUrl}   (OpenAPI: ${apiUrl}/openapi.json)`,
    `  Sandbox proxy  ${proxyUrl}   (and https on the same port: https://{port}-{id}.${pcfg.domain}; ${proxy.workers === 1 ? 'in this process' : `${proxy.workers} worker processes`})`,
    `  Orchestrator   ${rpc.url}   (node proxy ${nodeProxy.url})`,
    `  Dashboard      ${apiUrl}/dashboard   (sign in with an API key; the first key below is an admin key)`,
    '',
    ...sdkVariables({ apiUrl, proxyUrl, key, caCertPath, caBundlePath }),
    '',
  ].join('\n')

  return {
    banner,
    apiUrl,
    proxyUrl,
    key,
    node,
    api,
    async stop() {
      const errors: unknown[] = []
      for (const step of [
        () => proxy.close(),
        () => api.stop(),
        () => served.stop(),
        // Sandboxes keep running; the next start adopts them.
        () => node.stop(),
      ]) {
        await step().catch((err: unknown) => errors.push(err))
      }
      if (errors.length)
        throw new WarrenError('internal', `shutdown: ${errors.length} step(s) failed`)
    },
  }
}
