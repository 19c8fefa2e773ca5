import { clusterDir, loadOrchestratorConfig } from '@warren/shared'
import type { Command } from 'commander'
import { initCluster } from '../lib/cluster-files.js'

const DEFAULT_NAMES = ['localhost', '127.0.0.1', '::1']

/**
 * `warren cluster init`: what the components of one cluster share — the
 * secret every internal call carries, a cluster CA, and a certificate (with
 * its key) for the internal ports, signed by it for the names given. Files
 * are 0600 in a 0700 directory; an existing cluster is never overwritten.
 */
export function registerCluster(program: Command): void {
  const cluster = program
    .command('cluster')
    .description("a cluster's shared secret and certificates")
  cluster
    .command('init')
    .option('--dir <dir>', 'where the files go (default <WARREN_DATA_DIR>/cluster)')
    .option(
      '--name <name...>',
      "the internal ports' host names and addresses for their certificate",
      DEFAULT_NAMES,
    )
    .description('make the cluster secret, a cluster CA and a certificate for the internal ports')
    .action(async (opts: { dir?: string; name: string[] }) => {
      const dir = opts.dir ?? clusterDir(loadOrchestratorConfig().dataDir)
      const files = await initCluster(dir, opts.name)
      process.stdout.write(
        [
          `cluster files in ${dir} (copy them to every host of the cluster):`,
          ...Object.entries(files).map(([k, v]) => `  ${k}=${v}`),
          `the internal certificate names: ${opts.name.join(', ')}`,
          '',
        ].join('\n'),
      )
    })
}
