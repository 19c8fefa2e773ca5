import type { IncomingMessage } from 'node:http'
import type { Resolution } from './forward.js'
import { INTERNAL_HEADERS } from './internal-headers.js'

/**
 * What an edge proxy tells a node proxy about one request: which sandbox and
 * port, the client address it derived ('' when it could not tell) and the
 * forwarding chain it trusts. Across processes it travels in the internal
 * headers; in one process (`warren up`) the edge hands it over directly and
 * the request takes one hop instead of two.
 */
export interface Handoff {
  sandboxId: string
  port: number
  clientIp: string
  forwardedFor: string
  forwardedHost: string
  /** How the client reached the edge (TLS or not): the sandbox's X-Forwarded-Proto. */
  forwardedProto: 'http' | 'https'
}

/** The node proxy's resolution of a request the edge has handed over (at once when it can). */
export type NodeResolver = (req: RequestHead, handoff: Handoff) => Resolution | Promise<Resolution>

/** What a node resolver reads of a request: its path, and its headers (those of a direct caller). */
export type RequestHead = Pick<IncomingMessage, 'url' | 'headers'>

/** The handoff as internal headers, for a node proxy in another process. */
export function handoffHeaders(h: Handoff, secret?: string): Record<string, string> {
  return {
    ...(secret ? { [INTERNAL_HEADERS.secret]: secret } : {}),
    [INTERNAL_HEADERS.sandboxId]: h.sandboxId,
    [INTERNAL_HEADERS.sandboxPort]: String(h.port),
    [INTERNAL_HEADERS.clientIp]: h.clientIp,
    'x-forwarded-for': h.forwardedFor,
    'x-forwarded-host': h.forwardedHost,
    'x-forwarded-proto': h.forwardedProto,
  }
}
