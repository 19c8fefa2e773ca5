import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { newClusterSecret, WarrenError } from '@warren/shared'
import {
  type CertificateAuthority,
  ensurePrivateDir,
  loadCa,
  loadOrCreateCa,
  readPrivateFile,
  writePrivateDir,
} from '@warren/shared/pki'

/** What every component of a cluster is given: WARREN_* variable → file. */
export type ClusterEnv = Record<
  | 'WARREN_CLUSTER_SECRET_FILE'
  | 'WARREN_CLUSTER_CA'
  | 'WARREN_INTERNAL_TLS_CERT'
  | 'WARREN_INTERNAL_TLS_KEY',
  string
>

function paths(dir: string): ClusterEnv {
  return {
    WARREN_CLUSTER_SECRET_FILE: join(dir, 'secret'),
    WARREN_CLUSTER_CA: join(dir, 'ca', 'cert.pem'),
    WARREN_INTERNAL_TLS_CERT: join(dir, 'internal', 'cert.pem'),
    WARREN_INTERNAL_TLS_KEY: join(dir, 'internal', 'key.pem'),
  }
}

/**
 * Makes a cluster's shared files in `dir`: the secret every internal call
 * carries, a cluster CA, and a certificate (with its key) for the internal
 * ports signed by it for `names`. Files are 0600 in 0700 directories; an
 * existing cluster is never overwritten (`reuse` returns its files instead).
 */
export async function initCluster(
  dir: string,
  names: string[],
  opts: { reuse?: boolean } = {},
): Promise<ClusterEnv> {
  const files = paths(dir)
  if (existsSync(files.WARREN_CLUSTER_SECRET_FILE)) {
    if (opts.reuse) return files
    throw new WarrenError(
      'already_exists',
      `${files.WARREN_CLUSTER_SECRET_FILE} exists: this cluster is set up`,
    )
  }
  ensurePrivateDir(dir)
  const { ca } = await loadOrCreateCa(join(dir, 'ca'), { commonName: 'Warren cluster CA' })
  await writeInternalCertificate(ca, dir, names)
  // Written last: its presence means the cluster is complete.
  writeFileSync(files.WARREN_CLUSTER_SECRET_FILE, `${newClusterSecret()}\n`, {
    mode: 0o600,
    flag: 'wx',
  })
  return files
}

/**
 * A remote cluster's files in `dir` (`warren cluster add`): its own secret,
 * the control plane's CA certificate (without its key: the remote hosts
 * verify the API against it) and a certificate for the remote cluster's
 * internal ports, signed by that CA for `names`, so that the API verifies
 * its nodes as it does its own. `controlPlaneDir` is the directory `warren
 * cluster init` made for the control plane.
 */
export async function writeRemoteClusterFiles(
  dir: string,
  controlPlaneDir: string,
  names: string[],
  secret: string,
): Promise<ClusterEnv> {
  const files = paths(dir)
  if (existsSync(files.WARREN_CLUSTER_SECRET_FILE))
    throw new WarrenError('already_exists', `${files.WARREN_CLUSTER_SECRET_FILE} exists`)
  const { ca, certPath } = await loadCa(join(controlPlaneDir, 'ca'))
  ensurePrivateDir(dir)
  writePrivateDir(join(dir, 'ca'), { 'cert.pem': readPrivateFile(certPath) })
  await writeInternalCertificate(ca, dir, names)
  writeFileSync(files.WARREN_CLUSTER_SECRET_FILE, `${secret}\n`, { mode: 0o600, flag: 'wx' })
  return files
}

/** `<dir>/internal/{cert,key}.pem`: a server (and client) certificate of `ca` for `names`. */
async function writeInternalCertificate(
  ca: CertificateAuthority,
  dir: string,
  names: string[],
): Promise<void> {
  const ips = names.filter((n) => /^[\d.]+$|:/.test(n))
  const leaf = await ca.issue({
    commonName: names[0] ?? 'warren',
    dnsNames: names.filter((n) => !ips.includes(n)),
    ipAddresses: ips,
    usages: ['server', 'client'],
    validityDays: 825,
  })
  writePrivateDir(join(dir, 'internal'), { 'cert.pem': leaf.certPem, 'key.pem': leaf.keyPem })
}
