import { createApiService } from '@warren/api'
import { createEdgeProxy } from '@warren/proxy'
import {
  clusterTransport,
  createLogger,
  loadApiConfig,
  loadProxyConfig,
  readClusterCa,
  resolveClusterSecret,
} from '@warren/shared'
import type { Command } from 'commander'
import { readFirstKey, saveFirstKey } from '../lib/first-key.js'

/** The control plane and the edge proxy as separate processes (multi-node deployments). */
export function registerServices(program: Command): void {
  program
    .command('api')
    .description(
      'run the API alone; nodes register themselves (or come from WARREN_NODES, id=http://host:5008,...)',
    )
    .action(async () => {
      const log = createLogger('api')
      const cfg = loadApiConfig()
      const api = await createApiService(cfg, log)
      const { url, internalUrl } = await api.listen()
      if (api.createdKey) saveFirstKey(cfg.dataDir, api.createdKey)
      log.info({ url, internalUrl, key: api.createdKey ? 'created' : 'existing' }, 'api listening')
      if (api.createdKey ?? readFirstKey(cfg.dataDir)) process.stdout.write(`E2B_API_URL=${url}\n`)
      const stop = async () => {
        await api.stop()
        process.exit(0)
      }
      process.once('SIGTERM', stop)
      process.once('SIGINT', stop)
    })

  program
    .command('proxy')
    .description("run an edge proxy against the API's internal RPC (WARREN_API_INTERNAL_URL)")
    .action(async () => {
      const log = createLogger('proxy')
      const cfg = loadProxyConfig()
      const cluster = { secret: resolveClusterSecret(cfg), ca: readClusterCa(cfg.clusterCa) }
      const proxy = createEdgeProxy(
        cfg,
        clusterTransport(cfg.apiInternalUrl, cluster),
        log,
        cluster,
      )
      const url = await proxy.listen()
      log.info({ url, api: cfg.apiInternalUrl, ...proxy.tls }, 'proxy listening')
      if (proxy.tls.caCertPath)
        process.stdout.write(`NODE_EXTRA_CA_CERTS=${proxy.tls.caCertPath}\n`)
      const stop = async () => {
        await proxy.close()
        process.exit(0)
      }
      process.once('SIGTERM', stop)
      process.once('SIGINT', stop)
    })
}
