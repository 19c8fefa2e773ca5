import { z } from 'zod'
import { WarrenError } from '../errors.js'

/**
 * What every component of a cluster shares: its name, its secret (or the
 * file holding it; default <dataDir>/cluster/secret, as `warren cluster
 * init` and `warren up` write it) and the CA that signed the internal
 * servers' certificates, which clients verify them against.
 */
/** A cluster's name: lowercase letters, digits and hyphens. */
export const clusterNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and hyphens')

export const cluster = {
  clusterName: clusterNameSchema.default('default'),
  clusterSecret: z.string().min(16).optional(),
  clusterSecretFile: z.string().min(1).optional(),
  clusterCa: z.string().min(1).optional(),
}

/** An internal listener's own certificate and key (PEM files): set, it serves TLS. */
export const internalTls = {
  internalTlsCert: z.string().min(1).optional(),
  internalTlsKey: z.string().min(1).optional(),
}

export const clusterEnv = {
  WARREN_CLUSTER_NAME: 'clusterName',
  WARREN_CLUSTER_SECRET: 'clusterSecret',
  WARREN_CLUSTER_SECRET_FILE: 'clusterSecretFile',
  WARREN_CLUSTER_CA: 'clusterCa',
} as const

export const internalTlsEnv = {
  WARREN_INTERNAL_TLS_CERT: 'internalTlsCert',
  WARREN_INTERNAL_TLS_KEY: 'internalTlsKey',
} as const

/** A certificate without its key (or the reverse) is a mistake worth a clear error. */
export function checkTlsPair(cfg: { internalTlsCert?: string; internalTlsKey?: string }): void {
  if (!cfg.internalTlsCert !== !cfg.internalTlsKey) {
    throw new WarrenError(
      'invalid_argument',
      'invalid configuration: WARREN_INTERNAL_TLS_CERT and WARREN_INTERNAL_TLS_KEY go together',
    )
  }
}
