import type { IncomingMessage, ServerResponse } from 'node:http'
import { tokenMatches } from '../proxy/tokens.js'
import { CLUSTER_SECRET_HEADER } from './secret.js'

export type CallerVerdict = 'ok' | 'missing' | 'wrong'

/**
 * The credential a caller presents: the cluster header, or (where allowed)
 * `Authorization: Bearer`.
 */
export function presentedCredential(
  headers: IncomingMessage['headers'],
  opts: { bearer: boolean },
): string | undefined {
  const h = headers[CLUSTER_SECRET_HEADER]
  const header = Array.isArray(h) ? h[0] : h
  if (header !== undefined) return header
  if (!opts.bearer) return undefined
  return /^Bearer (\S+)$/i.exec(headers.authorization ?? '')?.[1]
}

/**
 * Judges a presented credential against the accepted ones, each compared in
 * constant time (every one of them, so the time says nothing of which matched).
 */
export function judgeCredential(
  presented: string | undefined,
  accepted: readonly string[],
): CallerVerdict {
  if (presented === undefined || presented === '') return 'missing'
  let ok = false
  for (const a of accepted) if (tokenMatches(presented, a)) ok = true
  return ok ? 'ok' : 'wrong'
}

/** 401 without a credential, 403 with a wrong one; `{code, message}` as everywhere. */
export function refuseCaller(
  res: ServerResponse,
  verdict: Exclude<CallerVerdict, 'ok'>,
  what: string,
): void {
  const status = verdict === 'missing' ? 401 : 403
  const message =
    verdict === 'missing'
      ? `${what} needs the cluster secret (${CLUSTER_SECRET_HEADER} or Authorization: Bearer)`
      : `${what}: wrong cluster secret`
  const body = JSON.stringify({ code: status, message })
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(status === 401 ? { 'www-authenticate': 'Bearer realm="warren-cluster"' } : {}),
  })
  res.end(body)
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/**
 * Puts a cluster-secret check in front of an internal port's handler: every
 * request is judged before anything else happens (no route, no lookup).
 * `extra` accepts further tokens on some paths (a scrape token on /metrics).
 */
export function requireClusterSecret(
  handler: Handler,
  opts: { secret: string; what: string; extra?: Record<string, readonly string[]> },
): Handler {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const accepted = [opts.secret, ...(opts.extra?.[path] ?? [])]
    const verdict = judgeCredential(presentedCredential(req.headers, { bearer: true }), accepted)
    if (verdict !== 'ok') {
      req.resume()
      refuseCaller(res, verdict, opts.what)
      return
    }
    handler(req, res)
  }
}
