import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  type ContextValues,
  createContextKey,
  createContextValues,
  type HandlerContext,
  type Interceptor,
} from '@connectrpc/connect'
import {
  type CallerVerdict,
  judgeCredential,
  type Logger,
  presentedCredential,
  refuseCaller,
  WarrenError,
} from '@warren/shared'
import { LRUCache } from 'lru-cache'
import { clusterOfSecret } from '../store/clusters.js'
import type { Db } from '../store/db.js'

/** Who calls the internal port: its cluster (null: the API's own) and the secret it showed. */
export interface ClusterCaller {
  cluster: string | null
  secret: string
}

const CALLER = createContextKey<ClusterCaller | undefined>(undefined, {
  description: 'the cluster calling the internal RPC',
})

/** The calling cluster of an internal RPC; a handler reached without one is a wiring bug. */
export function callerOf(ctx: HandlerContext): ClusterCaller {
  const caller = ctx.values.get(CALLER)
  if (!caller) throw new WarrenError('internal', 'an internal call without a caller')
  return caller
}

/**
 * For the in-process transport of the all-in-one: its edge is the API's own
 * cluster's, as if it had shown the API's own secret.
 */
export function ownCaller(secret: string): Interceptor {
  return (next) => (req) => {
    req.contextValues.set(CALLER, { cluster: null, secret })
    return next(req)
  }
}

/** How long a remote cluster's secret is believed without asking the store again. */
const KNOWN_TTL_MS = 5000
/** Secrets the store did not know: not asked again for a second (a flood of guesses). */
const UNKNOWN_TTL_MS = 1000

/**
 * The internal port's gate: every caller shows a cluster secret, which is
 * the API's own (its own cluster) or one of the remote clusters' (`warren
 * cluster add`, kept hashed in the store); 401 without one, 403 for one
 * that is neither. The caller's cluster travels with the request into the
 * RPC handlers (`callerOf`), which show each cluster only its own nodes and
 * sandboxes. Secrets found in the store are remembered for a few seconds (a
 * removed cluster is refused within that), so that keepalives and
 * heartbeats do not each cost a query. `own` paths accept only the API's
 * own secret (and their extra tokens): /metrics counts every cluster.
 */
export function createClusterGate(opts: {
  db: Db
  secret: string
  what: string
  log: Logger
  /** Paths served only to the API's own cluster, with further tokens they accept. */
  own?: Record<string, readonly string[]>
}) {
  /** Remote secrets looked up: their cluster, or undefined for a secret of none. */
  const known = new LRUCache<string, { cluster: string | undefined }>({
    max: 10_000,
    ttl: KNOWN_TTL_MS,
  })
  const callers = new WeakMap<object, ClusterCaller>()

  async function judge(
    presented: string | undefined,
    path: string,
  ): Promise<ClusterCaller | Exclude<CallerVerdict, 'ok'>> {
    const ownExtra = opts.own?.[path]
    const verdict = judgeCredential(presented, [opts.secret, ...(ownExtra ?? [])])
    if (verdict === 'missing') return verdict
    if (verdict === 'ok') return { cluster: null, secret: presented as string }
    if (ownExtra) return 'wrong'
    const p = presented as string
    let hit = known.get(p)
    if (!hit) {
      hit = { cluster: await clusterOfSecret(opts.db, p) }
      known.set(p, hit, hit.cluster ? {} : { ttl: UNKNOWN_TTL_MS })
    }
    return hit.cluster === undefined ? 'wrong' : { cluster: hit.cluster, secret: p }
  }

  return {
    /** Puts the gate in front of the internal port's handler. */
    guard(
      handler: (req: IncomingMessage, res: ServerResponse) => void,
    ): (req: IncomingMessage, res: ServerResponse) => void {
      return (req, res) => {
        const path = (req.url ?? '/').split('?')[0] ?? '/'
        judge(presentedCredential(req.headers, { bearer: true }), path).then(
          (caller) => {
            if (typeof caller === 'string') {
              req.resume()
              refuseCaller(res, caller, opts.what)
              return
            }
            callers.set(req, caller)
            handler(req, res)
          },
          (err: unknown) => {
            opts.log.warn({ err }, 'internal rpc: looking up a cluster secret failed')
            req.resume()
            res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
            res.end(JSON.stringify({ code: 503, message: 'the store is unavailable; retry' }))
          },
        )
      }
    },
    /** The caller of a request the gate let in. */
    caller(req: object): ClusterCaller | undefined {
      return callers.get(req)
    },
    /** The Connect adapter's context for a request the gate let in. */
    contextValues(req: object): ContextValues {
      const values = createContextValues()
      const caller = callers.get(req)
      if (caller) values.set(CALLER, caller)
      return values
    },
  }
}
