import { join } from 'node:path'
import { templatesDirOf } from '@warren/orchestrator'
import { createLogger, loadOrchestratorConfig, WarrenError } from '@warren/shared'
import type { Command } from 'commander'
import { type Component, startDevCluster } from '../lib/dev-cluster.js'
import { sdkVariables } from '../lib/sdk-banner.js'
import { ensureTemplate } from './template.js'

/** A component's internal listener, printed beside its URL. */
function internalOf(c: Component): string {
  if (c.kind === 'api') return `   (internal ${String(c.ready.internalUrl)})`
  if (c.kind === 'orchestrator') return `   (node proxy ${String(c.ready.nodeProxy)})`
  return ''
}

const count = (name: string, max: number) => (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new WarrenError('invalid_argument', `--${name} must be a whole number from 1 to ${max}`)
  return n
}

/**
 * `warren dev-cluster`: the multi-machine topology on one machine, each
 * component its own process (a private PostgreSQL, API replicas, nodes and an
 * edge proxy), for trying the cluster and testing against it. Ctrl-C kills
 * its sandboxes and stops everything; its data (the database, the first key)
 * stays in its directory for the next start.
 */
export function registerDevCluster(program: Command): void {
  program
    .command('dev-cluster')
    .description('run PostgreSQL, API replicas, nodes and an edge proxy as separate processes here')
    .option('--apis <n>', 'API replicas', count('apis', 8), 2)
    .option('--nodes <n>', 'orchestrator nodes', count('nodes', 8), 2)
    .option('--dir <dir>', 'its data (default <WARREN_DATA_DIR>/dev-cluster)')
    .option('--address-pool <cidr>', 'sandbox addresses, split between the nodes', '10.12.0.0/16')
    .option('--prefix <p>', "node n's namespaces, veths and cgroups are named <p><n>", 'wd')
    .action(
      async (opts: {
        apis: number
        nodes: number
        dir?: string
        addressPool: string
        prefix: string
      }) => {
        if (!/^[a-z][a-z0-9]{0,2}$/.test(opts.prefix))
          throw new WarrenError(
            'invalid_argument',
            '--prefix: a letter and up to two lowercase letters or digits',
          )
        const log = createLogger('dev-cluster')
        const ocfg = loadOrchestratorConfig()
        await ensureTemplate('base', { quietIfCurrent: true })
        const cluster = await startDevCluster({
          dir: opts.dir ?? join(ocfg.dataDir, 'dev-cluster'),
          apis: opts.apis,
          nodes: opts.nodes,
          addressPool: opts.addressPool,
          prefix: opts.prefix,
          templatesDir: templatesDirOf(ocfg),
          log,
        })
        const [apiUrl] = cluster.apiUrls
        const lines = [
          '',
          'Warren dev cluster is up.',
          ...cluster.components.map(
            (c) => `  ${c.name.padEnd(8)} pid ${String(c.pid).padEnd(8)} ${c.url}${internalOf(c)}`,
          ),
          `  postgres ${cluster.databaseUrl.replace(/:[^:@/]*@/, ':…@')}`,
          '',
          ...sdkVariables({
            apiUrl: apiUrl as string,
            proxyUrl: cluster.proxyUrl,
            key: cluster.key,
            caCertPath: cluster.caCertPath,
            caBundlePath: cluster.caBundlePath,
          }),
          '',
          'Ctrl-C kills its sandboxes and stops it.',
          '',
        ]
        process.stdout.write(lines.join('\n'))
        let stopping = false
        const shutdown = async () => {
          if (stopping) return
          stopping = true
          const errors = await cluster.stop()
          for (const e of errors) log.error({ err: e }, 'stop')
          process.stdout.write('Warren dev cluster stopped.\n')
          process.exit(errors.length ? 1 : 0)
        }
        process.once('SIGINT', shutdown)
        process.once('SIGTERM', shutdown)
      },
    )
}
