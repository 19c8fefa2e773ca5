import { CLUSTER_SECRET_HEADER } from '../cluster/secret.js'

/**
 * Headers the edge proxy sets for the node proxy. The edge strips them from
 * every incoming request and the node proxy strips them before the sandbox,
 * so a client can neither spoof them nor see them.
 */
export const INTERNAL_HEADERS = {
  sandboxId: 'x-warren-sandbox-id',
  sandboxPort: 'x-warren-sandbox-port',
  clientIp: 'x-warren-client-ip',
  /** The cluster secret: the node proxy believes the other internal headers only with it. */
  secret: CLUSTER_SECRET_HEADER,
} as const

export const INTERNAL_HEADER_NAMES: readonly string[] = Object.values(INTERNAL_HEADERS)
