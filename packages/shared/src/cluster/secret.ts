import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { WarrenError } from '../errors.js'
import { ensurePrivateDir, readOrCreatePrivateFile, readPrivateFile } from '../pki/files.js'

/**
 * The header that carries the cluster secret between Warren's own
 * components. The RPC ports also take it as `Authorization: Bearer` (what
 * Prometheus sends); the node proxy only in this header, since a sandbox's
 * own traffic may carry an Authorization of its own.
 */
export const CLUSTER_SECRET_HEADER = 'x-warren-cluster-secret'

/** Where `warren cluster init` and `warren up` keep a cluster's files by default. */
export function clusterDir(dataDir: string): string {
  return join(dataDir, 'cluster')
}

export function newClusterSecret(): string {
  return randomBytes(32).toString('hex')
}

/**
 * The cluster secret a component runs with: given, or read from its file
 * (which must be root's alone), or from `<dataDir>/cluster/secret`. Without
 * one a component refuses to start: no internal port serves whoever merely
 * connects.
 */
export function resolveClusterSecret(cfg: {
  clusterSecret?: string | undefined
  clusterSecretFile?: string | undefined
  dataDir: string
}): string {
  if (cfg.clusterSecret) return cfg.clusterSecret
  const file = cfg.clusterSecretFile ?? join(clusterDir(cfg.dataDir), 'secret')
  if (!existsSync(file)) {
    throw new WarrenError(
      'invalid_argument',
      `no cluster secret: set WARREN_CLUSTER_SECRET or WARREN_CLUSTER_SECRET_FILE, or run \`warren cluster init\` (it writes ${join(clusterDir(cfg.dataDir), 'secret')})`,
    )
  }
  const secret = readPrivateFile(file).trim()
  if (secret.length < 16)
    throw new WarrenError('invalid_argument', `the cluster secret in ${file} is too short`)
  return secret
}

/**
 * The secret in `path`, made (0600, in a 0700 directory) when there is none:
 * what `warren up` runs its own cluster with. Concurrent first starts agree
 * (see readOrCreatePrivateFile).
 */
export function loadOrCreateClusterSecret(path: string): string {
  ensurePrivateDir(join(path, '..'))
  return readOrCreatePrivateFile(path, () => `${newClusterSecret()}\n`).trim()
}
