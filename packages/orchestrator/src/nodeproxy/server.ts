import type { IncomingMessage, Server } from 'node:http'
import {
  type ConnectWindow,
  closeServer,
  createForwarder,
  createInternalServer,
  createRelay,
  ENVD_PORT,
  firstHeader,
  handleWithRequestId,
  INTERNAL_HEADERS,
  type InternalTls,
  ingressAllows,
  isInitPath,
  judgeCredential,
  type LocalNode,
  type Logger,
  listen,
  llhttpAvailable,
  maskedHost,
  type NodeResolver,
  type NodeVerdict,
  peerAddress,
  type Resolution,
  relayInFront,
  sandboxAddressOf,
  sandboxPortTarget,
  schemeOf,
  TRAFFIC_TOKEN_HEADER,
  tokenMatches,
  WarrenError,
} from '@warren/shared'
import type { SandboxNode } from '../node.js'
import { startNodeProxyWorkers } from './workers.js'

/**
 * The node's verdict on traffic for a sandbox on this node: the sandbox must
 * be running (and its container alive), ingress rules are checked against
 * the client address (fail-closed), and the Host is masked if asked.
 * `direct`: the caller is not an authenticated edge proxy, so the node asks
 * for the traffic token itself (an edge has checked it already).
 */
export function nodeVerdict(
  node: SandboxNode,
  sandboxId: string,
  port: number,
  clientIp: string,
  direct?: { trafficToken: string | undefined },
): NodeVerdict<ConnectWindow> {
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
    direct &&
    port !== ENVD_PORT &&
    record.trafficAccessToken &&
    !tokenMatches(direct.trafficToken, record.trafficAccessToken)
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
  if (policy && !ingressAllows(policy.ingress, clientIp, port)) {
    return {
      error: {
        status: 403,
        sandboxId,
        port,
        message: "The client's address is not allowed by the sandbox's ingress rules",
      },
    }
  }
  return {
    route: {
      host: record.sandboxIp,
      window: node.connectWindows.of(sandboxId, port),
      tls: !!policy?.httpsPorts.includes(port),
      ...(policy?.maskRequestHost ? { maskHost: maskedHost(policy.maskRequestHost, port) } : {}),
    },
  }
}

/**
 * The node proxy's resolution of a request for a sandbox on this node:
 * envd's /init is refused before the lookup, then the node's verdict
 * (see nodeVerdict); X-Forwarded-* are set.
 */
export function createNodeResolver(
  node: SandboxNode,
  opts: { direct?: boolean } = {},
): NodeResolver {
  return (req, h) => {
    if (h.port === ENVD_PORT && isInitPath(req.url)) {
      return { error: { status: 404, message: 'not found' } }
    }
    const direct = opts.direct
      ? { trafficToken: firstHeader(req, TRAFFIC_TOKEN_HEADER) }
      : undefined
    const verdict = nodeVerdict(node, h.sandboxId, h.port, h.clientIp, direct)
    return 'error' in verdict ? verdict : { target: sandboxPortTarget(verdict.route, h) }
  }
}

/** This node as the edge of its own process reaches it (the all-in-one). */
export function localNode(node: SandboxNode): LocalNode {
  return {
    resolve: createNodeResolver(node),
    verdict: (sandboxId, port, clientIp, direct) =>
      nodeVerdict(node, sandboxId, port, clientIp, direct),
    window: (sandboxId, port) => node.connectWindows.of(sandboxId, port),
    onChange: (fn) => node.onSandboxChange(fn),
  }
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
  opts: { secret: string; tls?: InternalTls | undefined; relay?: boolean },
): Server {
  return createNodeProxyServer(
    { edge: createNodeResolver(node), direct: createNodeResolver(node, { direct: true }) },
    { ...opts, log: node.log },
  )
}

/**
 * The node proxy's server over its two resolvers: for an edge's traffic and
 * for a direct caller's (the node's own, or a node proxy worker's copies).
 */
export function createNodeProxyServer(
  resolvers: { edge: NodeResolver; direct: NodeResolver },
  opts: { secret: string; tls?: InternalTls | undefined; log: Logger; relay?: boolean },
): Server {
  const resolve = (req: IncomingMessage): Resolution | Promise<Resolution> => {
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
    const resolve = fromEdge ? resolvers.edge : resolvers.direct
    return resolve(req, {
      ...address,
      // From an edge proxy, the client address it derived; a direct caller's own otherwise.
      clientIp: fromEdge ? (firstHeader(req, INTERNAL_HEADERS.clientIp) ?? '') : peer,
      forwardedFor: fromEdge ? (firstHeader(req, 'x-forwarded-for') ?? peer) : peer,
      forwardedHost: firstHeader(req, 'x-forwarded-host') ?? req.headers.host ?? '',
      forwardedProto:
        fromEdge && firstHeader(req, 'x-forwarded-proto') === 'https' ? 'https' : 'http',
    })
  }
  const forwarder = createForwarder(resolve)
  // The edge's request id (or a direct caller's, or a new one) goes on to the sandbox.
  const server = createInternalServer(
    (req, res) => handleWithRequestId(req, res, opts.log, () => void forwarder.onRequest(req, res)),
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
  // Plain requests take the relay (see createRelay); the rest, the server.
  if (opts.relay !== false && llhttpAvailable)
    relayInFront(server, createRelay({ resolve, log: opts.log }))
  return server
}

/** A listening node proxy: in this process, or on workers sharing its port. */
export interface ListeningNodeProxy {
  url: string
  close(): Promise<void>
}

/** The node proxy on its port: in this process with one worker, else on `workers` processes. */
export async function listenNodeProxy(
  node: SandboxNode,
  opts: {
    host: string
    port: number
    secret: string
    tls?: InternalTls | undefined
    workers: number
    relay: boolean
  },
): Promise<ListeningNodeProxy> {
  const { workers, ...where } = opts
  if (workers > 1) {
    return startNodeProxyWorkers(localNode(node), { ...where, count: workers, log: node.log })
  }
  const server = createNodeProxy(node, opts)
  const url = await listen(server, opts.host, opts.port)
  return {
    url: url.replace(/^http:/, `${schemeOf(opts.tls)}:`),
    close: () => closeServer(server),
  }
}
