import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { addCluster, listClusters, removeCluster } from '@warren/api'
import {
  clusterDir,
  clusterNameSchema,
  loadApiConfig,
  loadOrchestratorConfig,
  WarrenError,
} from '@warren/shared'
import type { Command } from 'commander'
import { initCluster, writeRemoteClusterFiles } from '../lib/cluster-files.js'
import { print } from '../lib/output.js'
import { withDb } from '../lib/store.js'

const DEFAULT_NAMES = ['localhost', '127.0.0.1', '::1']

function printFiles(dir: string, files: Record<string, string>, names: string[], extra: string[]) {
  process.stdout.write(
    [
      `cluster files in ${dir} (copy them to every host of the cluster):`,
      ...Object.entries(files).map(([k, v]) => `  ${k}=${v}`),
      ...extra,
      `the internal certificate names: ${names.join(', ')}`,
      '',
    ].join('\n'),
  )
}

/**
 * `warren cluster init`: what the components of one cluster share — the
 * secret every internal call carries, a cluster CA, and a certificate (with
 * its key) for the internal ports, signed by it for the names given. Files
 * are 0600 in a 0700 directory; an existing cluster is never overwritten.
 *
 * `warren cluster add|list|remove`: remote clusters of this control plane
 * (a data plane elsewhere: its nodes and edge proxies), each with a secret
 * of its own, kept hashed in the API's store.
 */
export function registerCluster(program: Command): void {
  const cluster = program
    .command('cluster')
    .description(
      "a cluster's shared secret and certificates; remote clusters of this control plane",
    )
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
      printFiles(dir, await initCluster(dir, opts.name), opts.name, [])
    })

  cluster
    .command('add <cluster>')
    .option(
      '--dir <dir>',
      "where the cluster's files go (default <WARREN_DATA_DIR>/clusters/<cluster>)",
    )
    .option(
      '--from <dir>',
      "the control plane's cluster directory, whose CA signs the new cluster's certificate (default <WARREN_DATA_DIR>/cluster)",
    )
    .option(
      '--name <name...>',
      "the remote cluster's internal ports' host names and addresses for their certificate",
      DEFAULT_NAMES,
    )
    .description(
      'register a remote cluster in the store: its secret (shown once, in its files; stored hashed) and a certificate for its internal ports',
    )
    .action(async (name: string, opts: { dir?: string; from?: string; name: string[] }) => {
      const valid = clusterNameSchema.safeParse(name)
      if (!valid.success)
        throw new WarrenError(
          'invalid_argument',
          `invalid cluster name '${name}': lowercase letters, digits and hyphens`,
        )
      const cfg = loadApiConfig()
      if (name === cfg.clusterName)
        throw new WarrenError(
          'invalid_argument',
          `'${name}' is the API's own cluster (WARREN_CLUSTER_NAME)`,
        )
      const dir = opts.dir ?? join(cfg.dataDir, 'clusters', name)
      const from = opts.from ?? clusterDir(cfg.dataDir)
      if (!existsSync(join(from, 'ca')))
        throw new WarrenError(
          'invalid_argument',
          `no cluster CA in ${from} (run \`warren cluster init\` there first, or pass --from)`,
        )
      if (existsSync(dir)) throw new WarrenError('already_exists', `${dir} exists`)
      const { secret } = await withDb((db) => addCluster(db, name))
      const files = await writeRemoteClusterFiles(dir, from, opts.name, secret)
      printFiles(dir, files, opts.name, [`  WARREN_CLUSTER_NAME=${name}`])
    })

  cluster
    .command('list')
    .alias('ls')
    .option('--json', 'machine-readable output')
    .description("this control plane's remote clusters")
    .action(async (opts: { json?: boolean }) => {
      const rows = await withDb((db) => listClusters(db))
      print(
        rows.map((c) => ({ cluster: c.name, created: new Date(c.createdAt) })),
        opts.json,
      )
    })

  cluster
    .command('remove <cluster>')
    .description(
      'forget a remote cluster (refused while it has sandboxes): its secret opens nothing any more',
    )
    .action(async (name: string) => {
      await withDb((db) => removeCluster(db, name))
    })
}
