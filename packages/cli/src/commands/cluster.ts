import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { clusterDir, loadOrchestratorConfig, newClusterSecret, WarrenError } from '@warren/shared'
import { ensurePrivateDir, loadOrCreateCa, writePrivateDir } from '@warren/shared/pki'
import type { Command } from 'commander'

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
      const secretPath = join(dir, 'secret')
      if (existsSync(secretPath))
        throw new WarrenError('already_exists', `${secretPath} exists: this cluster is set up`)
      ensurePrivateDir(dir)
      const { ca, certPath: caPath } = await loadOrCreateCa(join(dir, 'ca'), {
        commonName: 'Warren cluster CA',
      })
      const ips = opts.name.filter((n) => /^[\d.]+$|:/.test(n))
      const dns = opts.name.filter((n) => !ips.includes(n))
      const leaf = await ca.issue({
        commonName: opts.name[0] ?? 'warren',
        dnsNames: dns,
        ipAddresses: ips,
        usages: ['server', 'client'],
        validityDays: 825,
      })
      writePrivateDir(join(dir, 'internal'), { 'cert.pem': leaf.certPem, 'key.pem': leaf.keyPem })
      writeFileSync(secretPath, `${newClusterSecret()}\n`, { mode: 0o600, flag: 'wx' })
      process.stdout.write(
        [
          `cluster files in ${dir} (copy them to every host of the cluster):`,
          `  WARREN_CLUSTER_SECRET_FILE=${secretPath}`,
          `  WARREN_CLUSTER_CA=${caPath}`,
          `  WARREN_INTERNAL_TLS_CERT=${join(dir, 'internal', 'cert.pem')}`,
          `  WARREN_INTERNAL_TLS_KEY=${join(dir, 'internal', 'key.pem')}`,
          `the internal certificate names: ${opts.name.join(', ')}`,
          '',
        ].join('\n'),
      )
    })
}
