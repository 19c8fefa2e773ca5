import type { Server } from 'node:http'
import {
  ConnectWindowError,
  createForwarder,
  createInternalServer,
  ENVD_PORT,
  firstHeader,
  handleWithRequestId,
  INTERNAL_HEADER_NAMES,
  INTERNAL_HEADERS,
  type InternalTls,
  ingressAllows,
  isInitPath,
  judgeCredential,
  listen,
  maskedHost,
  type NodeResolver,
  type ProxyError,
  peerAddress,
  sandboxAddressOf,
  schemeOf,
  tokenMatches,
  WarrenError,
} from '@warren/shared'
import type { SandboxNode } from '../node.js'

/** E2B's header for a sandbox's ports when public traffic is off. */
const TRAFFIC_TOKEN_HEADER = 'e2b-traffic-access-token'

/** A port that refuses is retried for about a second before the client gets 502. */
const DIAL_RETRY = { retries: 5, initialDelayMs: 30 }

/**
 * The node proxy's resolution of a request for a sandbox on this node: envd's
 * /init is refused before the lookup, the sandbox must be running (and its
 * container alive), ingress rules are checked against the client address
 * (fail-closed), the Host is masked if asked, and X-Forwarded-* are set.
 * `direct`: the caller is not an authenticated edge proxy, so the node asks
 * for the traffic token itself (an edge has checked it already).
 */
export function createNodeResolver(
  node: SandboxNode,
  opts: { direct?: boolean } = {},
): NodeResolver {
  return async (req, h) => {
    const { sandboxId, port } = h
    if (port === ENVD_PORT && isInitPath(req.url)) {
      return { error: { status: 404, message: 'not found' } }
    }
    let record: ReturnType<SandboxNode['get']>
    try {
      record = node.get(sandboxId)
    } catch (err) {
      if (err instanceof WarrenError && err.code === 'not_found') {
        return { error: { status: 502, sandboxId, message: 'The sandbox was not found' } }
      }
      throw err
    }
    if (record.state !== 'running' || !record.sandboxIp) {
      return { error: { status: 502, sandboxId, message: `The sandbox is ${record.state}` } }
    }
    const exit = node.exits.of(sandboxId)
    if (exit) {
      const message = `The sandbox has exited: ${exit.detail}`
      return {
        error:
          port === ENVD_PORT
            ? { status: 502, sandboxId, message }
            : {
                status: 410,
                sandboxId,
                port,
                message,
                headers: { 'x-warren-kill-reason': 'exited' },
              },
      }
    }
    if (
      opts.direct &&
      port !== ENVD_PORT &&
      record.trafficAccessToken &&
      !tokenMatches(firstHeader(req, TRAFFIC_TOKEN_HEADER), record.trafficAccessToken)
    ) {
      return {
        error: {
          status: 403,
          sandboxId,
          port,
          message: `missing or invalid ${TRAFFIC_TOKEN_HEADER}: this sandbox does not accept public traffic`,
        },
      }
    }
    const policy = node.networkPolicy(sandboxId)
    if (policy && !ingressAllows(policy.ingress, h.clientIp, port)) {
      return {
        error: {
          status: 403,
          sandboxId,
          port,
          message: "The client's address is not allowed by the sandbox's ingress rules",
        },
      }
    }
    const mask: Record<string, string> = policy?.maskRequestHost
      ? { host: maskedHost(policy.maskRequestHost, port) }
      : {}
    return {
      target: {
        host: record.sandboxIp,
        port,
        dialRetry: DIAL_RETRY,
        connectWindow: node.connectWindows.of(sandboxId, port),
        ...(policy?.httpsPorts.includes(port) ? { tls: true } : {}),
        removeHeaders: INTERNAL_HEADER_NAMES,
        setHeaders: {
          'x-forwarded-for': h.forwardedFor,
          'x-forwarded-proto': h.forwardedProto,
          'x-forwarded-host': h.forwardedHost,
          ...mask,
        },
        unreachable: (err) => unreachable(err, sandboxId, port),
      },
    }
  }
}

/**
 * Why a running sandbox's port could not be reached. 502 means no listener
 * (refused, after the retries); a port that takes SYNs in but answers none
 * within the connect budget has a listener, so that is a timeout (504); a
 * request that got no place in the port's connect window is told to retry.
 */
function unreachable(err: Error, sandboxId: string, port: number): ProxyError {
  if (err instanceof ConnectWindowError)
    return { status: 503, sandboxId, port, retryAfter: 1, message: err.message }
  if ((err as NodeJS.ErrnoException).code === 'ETIMEDOUT')
    return {
      status: 504,
      sandboxId,
      port,
      message: 'The sandbox is running but its server at this port accepted no connection in time',
    }
  return { status: 502, sandboxId, port, message: 'The sandbox is running but port is not open' }
}

/**
 * The node proxy as a server. An edge proxy of the cluster names the
 * sandbox, port and client in internal headers, with the cluster secret;
 * without the secret nothing in those headers is believed: a caller that
 * sends them is refused (401, or 403 for a wrong secret), and anyone else is
 * a direct caller that names the sandbox by the `{port}-{id}.{domain}` Host,
 * whose own address is judged by the ingress rules and who must bring the
 * traffic token when public traffic is off — the checks an edge would make.
 */
export function createNodeProxy(
  node: SandboxNode,
  opts: { secret: string; tls?: InternalTls },
): Server {
  const forEdge = createNodeResolver(node)
  const forDirect = createNodeResolver(node, { direct: true })
  const forwarder = createForwarder(async (req) => {
    const peer = peerAddress(req.socket)
    const presented = firstHeader(req, INTERNAL_HEADERS.secret)
    const verdict = presented === undefined ? 'missing' : judgeCredential(presented, [opts.secret])
    if (verdict === 'wrong')
      return { error: { status: 403, message: 'the node proxy: wrong cluster secret' } }
    const fromEdge = verdict === 'ok'
    const namesInternally = [
      INTERNAL_HEADERS.sandboxId,
      INTERNAL_HEADERS.sandboxPort,
      INTERNAL_HEADERS.clientIp,
    ].some((h) => req.headers[h] !== undefined)
    if (!fromEdge && namesInternally) {
      return {
        error: {
          status: 401,
          message: `the node proxy believes ${INTERNAL_HEADERS.sandboxId} and its like only with the cluster secret`,
        },
      }
    }
    const address = sandboxAddressOf({
      host: req.headers.host,
      sandboxId: fromEdge ? firstHeader(req, INTERNAL_HEADERS.sandboxId) : undefined,
      sandboxPort: fromEdge ? firstHeader(req, INTERNAL_HEADERS.sandboxPort) : undefined,
    })
    if (!address) return { error: { status: 400, message: 'request names no sandbox' } }
    const resolve = fromEdge ? forEdge : forDirect
    return resolve(req, {
      ...address,
      // From an edge proxy, the client address it derived; a direct caller's own otherwise.
      clientIp: fromEdge ? (firstHeader(req, INTERNAL_HEADERS.clientIp) ?? '') : peer,
      forwardedFor: fromEdge ? (firstHeader(req, 'x-forwarded-for') ?? peer) : peer,
      forwardedHost: firstHeader(req, 'x-forwarded-host') ?? req.headers.host ?? '',
      forwardedProto:
        fromEdge && firstHeader(req, 'x-forwarded-proto') === 'https' ? 'https' : 'http',
    })
  })
  // The edge's request id (or a direct caller's, or a new one) goes on to the sandbox.
  const server = createInternalServer(
    (req, res) => handleWithRequestId(req, res, node.log, () => void forwarder.onRequest(req, res)),
    opts.tls,
  )
  server.on('upgrade', (req, socket, head) =>
    handleWithRequestId(
      req,
      undefined,
      undefined,
      () => void forwarder.onUpgrade(req, socket, head),
    ),
  )
  server.on('close', () => void forwarder.close())
  return server
}

export async function listenNodeProxy(
  node: SandboxNode,
  opts: { host: string; port: number; secret: string; tls?: InternalTls | undefined },
) {
  const server = createNodeProxy(node, {
    secret: opts.secret,
    ...(opts.tls ? { tls: opts.tls } : {}),
  })
  const url = await listen(server, opts.host, opts.port)
  return { server, url: url.replace(/^http:/, `${schemeOf(opts.tls)}:`) }
}
