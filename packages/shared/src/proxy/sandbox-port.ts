import type { ConnectWindowHandle } from './connect-window.js'
import type { ProxyError } from './errors.js'
import type { ForwardTarget } from './forward.js'
import type { Handoff, NodeResolver } from './handoff.js'
import { INTERNAL_HEADER_NAMES } from './internal-headers.js'
import { sandboxPortUnreachable } from './port-unreachable.js'

/** A port that refuses is retried for about a second before the client gets 502. */
const SANDBOX_DIAL_RETRY = { retries: 5, initialDelayMs: 30 }

/** Where a node lets traffic for one sandbox port go. */
export interface SandboxPortRoute<W extends ConnectWindowHandle = ConnectWindowHandle> {
  /** The sandbox's address. */
  host: string
  /** New connections to the port go through it (see ConnectWindow). */
  window: W
  /** The port is one of the sandbox's `httpsPorts`. */
  tls: boolean
  /** The Host the sandbox sees, when it masks the request's. */
  maskHost?: string | undefined
}

/**
 * A node's judgement of edge traffic to one sandbox port from one client
 * address: refused, or where it goes. It changes only when the sandbox's
 * state, address, exit, policy or windows do (see `LocalNode.onChange`).
 */
export type NodeVerdict<W extends ConnectWindowHandle = ConnectWindowHandle> =
  | { error: ProxyError }
  | { route: SandboxPortRoute<W> }

/** The forward target of one request the node lets through. */
export function sandboxPortTarget(route: SandboxPortRoute, h: Handoff): ForwardTarget {
  return {
    host: route.host,
    port: h.port,
    dialRetry: SANDBOX_DIAL_RETRY,
    connectWindow: route.window,
    ...(route.tls ? { tls: true } : {}),
    removeHeaders: INTERNAL_HEADER_NAMES,
    setHeaders: {
      'x-forwarded-for': h.forwardedFor,
      'x-forwarded-proto': h.forwardedProto,
      'x-forwarded-host': h.forwardedHost,
      ...(route.maskHost ? { host: route.maskHost } : {}),
    },
    unreachable: (err) => sandboxPortUnreachable(err, h.sandboxId, h.port),
  }
}

/**
 * A node in the edge's own process (the all-in-one's): the edge hands it
 * requests without a hop, and proxy workers, which cannot reach it in
 * process, cache its verdicts until it says a sandbox changed.
 */
export interface LocalNode {
  resolve: NodeResolver
  /**
   * The verdict `resolve` acts on: for edge traffic (the edge has checked
   * the traffic token), or for a `direct` caller with the token it brought.
   */
  verdict(
    sandboxId: string,
    port: number,
    clientIp: string,
    direct?: { trafficToken: string | undefined },
  ): NodeVerdict
  /** The connect window of a sandbox port, now. */
  window(sandboxId: string, port: number): ConnectWindowHandle
  /** Told of every sandbox whose verdicts may have changed. */
  onChange(fn: (sandboxId: string) => void): () => void
}
