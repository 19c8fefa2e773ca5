import { readFileSync } from 'node:fs'
import type { Interceptor, Transport } from '@connectrpc/connect'
import { createConnectTransport } from '@connectrpc/connect-node'
import { CLUSTER_SECRET_HEADER } from './secret.js'

/** How a component calls another one of its cluster. */
export interface ClusterClientOptions {
  secret: string
  /** PEM of the cluster CA (https URLs are verified against it alone). */
  ca?: string | undefined
}

/** The CA file's PEM, if one is configured. */
export function readClusterCa(path: string | undefined): string | undefined {
  return path ? readFileSync(path, 'utf8') : undefined
}

/**
 * A Connect transport to another component's internal port: every call
 * carries the cluster secret; over https the server's certificate must chain
 * to the cluster CA (when one is given; else the system's roots).
 */
export function clusterTransport(url: string, opts: ClusterClientOptions): Transport {
  const withSecret: Interceptor = (next) => (req) => {
    req.header.set(CLUSTER_SECRET_HEADER, opts.secret)
    return next(req)
  }
  return createConnectTransport({
    baseUrl: url,
    httpVersion: '1.1',
    interceptors: [withSecret],
    ...(url.startsWith('https:') && opts.ca ? { nodeOptions: { ca: opts.ca } } : {}),
  })
}
