import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import {
  ENVD_PORT,
  firstHeader,
  type Handoff,
  handoffHeaders,
  INTERNAL_HEADER_NAMES,
  isInitPath,
  type NodeResolver,
  type ProxyError,
  peerAddress,
  type Resolution,
  type SandboxAddress,
  sandboxAddressOf,
  signedFilesRequest,
  type TlsVerify,
  TRAFFIC_TOKEN_HEADER,
  toWarrenError,
  type WakeCredentials,
} from '@warren/shared'
import { type Route, RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import type { Catalog } from '../catalog/route-catalog.js'
import { WebSocketMeter } from '../keepalive/ws-meter.js'
import { refuseResume, refuseTraffic, wakeCredentials } from './authorize.js'
import { clientIp } from './client-ip.js'
import { PendingAnswers } from './pending-answers.js'
import type { SignatureRoutes } from './signatures.js'

/** How long a request waits for the first catalog snapshot before it is answered 503. */
const CATALOG_WAIT_MS = 5000
/** The hop to a node proxy right after a resume is retried for about a second if refused. */
const RESUMED_DIAL_RETRY = { retries: 5, initialDelayMs: 30 }
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', ''])
/**
 * Every request header `resolveNow` and a local node's verdict read for a
 * running sandbox (the address, the traffic token, the client address and
 * forwarded chain): a pinned connection's requests repeat them exactly.
 */
const ROUTING_HEADERS = [
  'host',
  'e2b-sandbox-id',
  'e2b-sandbox-port',
  TRAFFIC_TOKEN_HEADER,
  'x-forwarded-for',
]

/** Where traffic of keepalive sandboxes is told (a KeepaliveReporter). */
interface Keepalive {
  touch(sandboxId: string): void
}

interface NodeProxy {
  host: string
  port: number
  tls?: TlsVerify
}

/**
 * A node proxy's URL as something to dial: http(s), a host that names one
 * machine (not empty, not a wildcard) and a port. Anything else is no route.
 */
function dialable(url: string, clusterCa: string | undefined): NodeProxy | undefined {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return undefined
  }
  // URL keeps the brackets of an IPv6 host; a socket wants the bare address.
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1')
  const https = u.protocol === 'https:'
  if ((!https && u.protocol !== 'http:') || WILDCARD_HOSTS.has(host)) return undefined
  return {
    host,
    port: Number(u.port || (https ? 443 : 80)),
    // A node proxy over TLS proves itself with a certificate of the cluster CA.
    ...(https ? { tls: { ca: clusterCa, servername: host } } : {}),
  }
}

/**
 * The edge proxy's resolver: which sandbox and port a request names, whether
 * the catalog lets it through, and which node proxy carries it.
 */
export function createEdgeResolver(opts: {
  catalog: Catalog
  trustedHops: number
  resumer: { resume(sandboxId: string, creds: WakeCredentials): Promise<Route> }
  keepalive: Keepalive
  signatures: SignatureRoutes
  /** Node proxies in this process, by URL: requests to them take no extra hop. */
  localNodes?: Map<string, NodeResolver> | undefined
  /** The cluster secret: node proxies believe the handoff headers only with it. */
  clusterSecret: string
  /** The cluster CA that https node proxies' certificates are checked against. */
  clusterCa?: string | undefined
}) {
  const nodeProxies = new Map<string, NodeProxy>()
  /** The node proxy a route names, or undefined when its address cannot be dialled. */
  const nodeProxy = (url: string): NodeProxy | undefined => {
    let entry = nodeProxies.get(url)
    if (!entry) {
      entry = dialable(url, opts.clusterCa)
      if (!entry) return undefined
      nodeProxies.set(url, entry)
    }
    return entry
  }

  /**
   * A signed `/files` URL (uploadUrl/downloadUrl) fetched without a sandbox
   * header or host: its signature names the sandbox. Expired or malformed
   * ones are refused before any search, as envd would refuse them.
   */
  async function signedAddress(req: IncomingMessage): Promise<SandboxAddress | ProxyError> {
    const signed = signedFilesRequest(req.method, req.url)
    if (!signed) {
      return {
        status: 400,
        message:
          'The request names no sandbox: use the host {port}-{sandboxId}.{domain} or the E2b-Sandbox-Id header',
      }
    }
    if (signed.expiration !== undefined) {
      if (!/^\d{1,15}$/.test(signed.expiration))
        return { status: 401, message: 'invalid signature_expiration' }
      if (Number(signed.expiration) < Math.floor(Date.now() / 1000))
        return { status: 401, message: 'signature is already expired' }
    }
    if (!(await opts.catalog.readyWithin(CATALOG_WAIT_MS))) return noCatalog()
    const searches = opts.signatures.searches
    let sandboxId = opts.signatures.find(signed)
    if (!sandboxId && opts.signatures.searches > searches) {
      // A worker's copy may lag its primary's by a sandbox just created:
      // searched again once it holds what the primary held.
      await opts.catalog.caughtUp()
      sandboxId = opts.signatures.find(signed)
    }
    if (!sandboxId) return { status: 401, message: 'invalid signature: it matches no sandbox' }
    return { sandboxId, port: ENVD_PORT }
  }

  const pending = new PendingAnswers(stoppedServing)

  /**
   * A running sandbox the catalog holds, its traffic let through: at once,
   * with no promise (what nearly every request is). Undefined for anything
   * else, which `resolveLater` judges in full.
   */
  function resolveNow(req: IncomingMessage): Resolution | Promise<Resolution> | undefined {
    const address = namedAddress(req)
    if (!address || (address.port === ENVD_PORT && isInitPath(req.url))) return undefined
    const route = opts.catalog.peek(address.sandboxId)
    if (
      !route ||
      route.state !== RouteState.RUNNING ||
      refuseTraffic(req, route, address.port) ||
      refusal(route, address.port)
    )
      return undefined
    return targetFor(req, route, address.sandboxId, address.port, false)
  }

  function resolve(req: IncomingMessage): Resolution | Promise<Resolution> {
    return resolveNow(req) ?? resolveLater(req)
  }

  async function resolveLater(req: IncomingMessage): Promise<Resolution> {
    const address = namedAddress(req) ?? (await signedAddress(req))
    if ('status' in address) return { error: address }
    const { sandboxId, port } = address
    // envd's /init belongs to the orchestrator alone. Refused here, before the
    // catalog is consulted, so the answer is the same for every sandbox id,
    // and such a request never travels past the edge.
    if (port === ENVD_PORT && isInitPath(req.url)) {
      return { error: { status: 404, message: 'not found' } }
    }
    if (!(await opts.catalog.readyWithin(CATALOG_WAIT_MS))) {
      return { error: { ...noCatalog(), sandboxId, port } }
    }
    let route = await opts.catalog.lookup(sandboxId)
    let resumed = false
    if (!route) {
      // A miss (a sandbox of this cluster the stream has not brought yet, a
      // stream being re-established): the control plane routes it, and wakes
      // it first if it sleeps and this request may wake it.
      if (opts.catalog.recentMiss(sandboxId)) return { error: notFound(sandboxId) }
      try {
        route = await opts.resumer.resume(sandboxId, wakeCredentials(req, port))
        resumed = true
      } catch (err) {
        if (toWarrenError(err).code === 'not_found') opts.catalog.noteMiss(sandboxId)
        return { error: resumeFailed(sandboxId, port, err) }
      }
    }
    const denied = refuseTraffic(req, route, port)
    if (denied) return { error: denied }
    // Pausing too: traffic at the moment of an auto-pause waits for the pause
    // to finish and then wakes the sandbox (the API waits it out), as it would
    // a moment later — not an error for the client to retry.
    if (
      route.autoResume &&
      (route.state === RouteState.PAUSED ||
        route.state === RouteState.RESUMING ||
        route.state === RouteState.PAUSING)
    ) {
      const creds = wakeCredentials(req, port)
      const refusedResume = refuseResume(creds, route, port)
      if (refusedResume) return { error: refusedResume }
      try {
        route = await opts.resumer.resume(sandboxId, creds)
        resumed = true
      } catch (err) {
        return { error: resumeFailed(sandboxId, port, err) }
      }
    }
    // A refusal is confirmed with the API first: this copy may lag a change
    // made through another API replica (see RouteCatalog.confirm).
    if (refusal(route, port)) {
      const current = await opts.catalog.confirm(sandboxId)
      if (current) route = current
    }
    const refused = refusal(route, port)
    if (refused) return { error: refused }
    return targetFor(req, route, sandboxId, port, resumed)
  }

  /** Where a request the catalog lets through goes: the local node's verdict, or a node proxy. */
  function targetFor(
    req: IncomingMessage,
    r: Route,
    sandboxId: string,
    port: number,
    resumed: boolean,
  ): Resolution | Promise<Resolution> {
    const local = opts.localNodes?.get(r.nodeProxyUrl)
    const node = local ? undefined : nodeProxy(r.nodeProxyUrl)
    // No address to dial (the sandbox's node has not registered with the
    // control plane since it restarted, say) is not a route: retry shortly.
    if (!local && !node)
      return {
        error: {
          status: 503,
          sandboxId,
          port,
          retryAfter: 1,
          message: "The sandbox's node cannot be reached yet; retry",
        },
      }
    const onTraffic = r.keepaliveTraffic ? keepaliveHook(opts.keepalive, sandboxId, req) : undefined
    onTraffic?.(1)
    const peer = peerAddress(req.socket)
    const priorFor = firstHeader(req, 'x-forwarded-for')
    const handoff: Handoff = {
      sandboxId,
      port,
      clientIp: clientIp(req, opts.trustedHops) ?? '',
      forwardedFor: priorFor ? `${priorFor}, ${peer}` : peer,
      forwardedHost: req.headers.host ?? '',
      forwardedProto: (req.socket as TLSSocket).encrypted ? 'https' : 'http',
    }
    if (local) {
      // Plain HTTP to a sandbox's port other than envd's (whose /init is
      // judged by path) may be pinned: what routed it is the catalog's
      // route (released on its change), the node's verdict (released on the
      // node's), the socket and these headers.
      const pinnable = port !== ENVD_PORT && handoff.forwardedProto === 'http'
      const keepalive = r.keepaliveTraffic ? opts.keepalive : undefined
      const tracked = (resolution: Resolution): Resolution => {
        if ('target' in resolution) {
          const t = resolution.target
          if (onTraffic) t.onTraffic = onTraffic
          t.cancel = pending.track(sandboxId, port)
          if (pinnable && !t.tls)
            t.pin = {
              sandboxId,
              same: ROUTING_HEADERS,
              touch: keepalive && (() => keepalive.touch(sandboxId)),
            }
        }
        return resolution
      }
      const resolution = local(req, handoff)
      return resolution instanceof Promise ? resolution.then(tracked) : tracked(resolution)
    }
    const to = node as NodeProxy
    return {
      target: {
        host: to.host,
        port: to.port,
        // A sandbox just resumed may take a moment before its node answers for it.
        ...(resumed ? { dialRetry: RESUMED_DIAL_RETRY } : {}),
        removeHeaders: INTERNAL_HEADER_NAMES,
        setHeaders: handoffHeaders(handoff, opts.clusterSecret),
        ...(to.tls ? { tls: to.tls } : {}),
        cancel: pending.track(sandboxId, port),
        unreachable: () => ({
          status: 502,
          sandboxId,
          port,
          message: 'The sandbox node is unreachable',
        }),
        ...(onTraffic ? { onTraffic } : {}),
      },
    }
  }

  return { resolve, pending }
}

/**
 * What a request already sent on to a sandbox is answered when the catalog
 * says the sandbox changed, if it is to end now (see PendingAnswers): what a
 * new request would get. Traffic to an auto-resume sandbox waits for it.
 */
function stoppedServing(
  sandboxId: string,
  route: Route | undefined,
  port: number,
): ProxyError | undefined {
  if (!route) return notFound(sandboxId)
  if (
    route.autoResume &&
    (route.state === RouteState.PAUSED ||
      route.state === RouteState.RESUMING ||
      route.state === RouteState.PAUSING)
  )
    return undefined
  return refusal(route, port)
}

/**
 * Bytes that flow keep the sandbox alive; an idle open connection does not,
 * and neither do the heartbeats (pings, pongs) of an open WebSocket.
 */
function keepaliveHook(reporter: Keepalive, sandboxId: string, req: IncomingMessage) {
  const ws = /^websocket$/i.test(firstHeader(req, 'upgrade') ?? '')
  const client = ws ? new WebSocketMeter({ httpHead: false }) : undefined
  const sandbox = ws ? new WebSocketMeter({ httpHead: true }) : undefined
  return (bytes: number, chunk?: Buffer, fromClient?: boolean) => {
    const meter = fromClient ? client : sandbox
    const counted = meter && chunk ? meter.push(chunk) : bytes
    if (counted > 0) reporter.touch(sandboxId)
  }
}

/** The sandbox and port a request names by its Host or the E2b-Sandbox-Id/-Port headers. */
function namedAddress(req: IncomingMessage): SandboxAddress | undefined {
  return sandboxAddressOf({
    host: req.headers.host,
    sandboxId: firstHeader(req, 'e2b-sandbox-id'),
    sandboxPort: firstHeader(req, 'e2b-sandbox-port'),
  })
}

function noCatalog(): ProxyError {
  return {
    status: 503,
    retryAfter: 1,
    message: 'The proxy has no routing catalog yet (the API is not reachable); retry',
  }
}

function resumeFailed(sandboxId: string, port: number, err: unknown): ProxyError {
  const w = toWarrenError(err)
  if (w.code === 'not_found') return notFound(sandboxId)
  const envd = port === ENVD_PORT
  if (w.code === 'conflict')
    return { status: envd ? 502 : 409, sandboxId, port, message: w.message }
  if (w.code === 'limit_exceeded') return { status: 429, sandboxId, port, message: w.message }
  // The control plane judged the request's credentials and refused to wake it.
  if (w.code === 'forbidden') return { status: 403, sandboxId, port, message: w.message }
  return {
    status: envd ? 502 : 503,
    sandboxId,
    port,
    retryAfter: 1,
    message: 'The sandbox could not be resumed; retry',
  }
}

function notFound(sandboxId: string): ProxyError {
  return { status: 502, sandboxId, message: 'The sandbox was not found' }
}

/**
 * Why the catalog refuses traffic to a sandbox, if it does. On the envd port
 * every "not running" answer is 502: the SDK's isRunning() reads exactly that.
 */
function refusal(route: Route, port: number): ProxyError | undefined {
  const sandboxId = route.sandboxId
  const envd = port === ENVD_PORT
  switch (route.state) {
    case RouteState.RUNNING:
      return undefined
    case RouteState.KILLED: {
      const reason = route.killReason || 'request'
      const message = `The sandbox was killed (reason: ${reason})`
      return envd
        ? { status: 502, sandboxId, message }
        : { status: 410, sandboxId, port, message, headers: { 'x-warren-kill-reason': reason } }
    }
    case RouteState.PAUSING:
    case RouteState.RESUMING:
      // On envd's port "not running" must read 502 (isRunning() relies on
      // it); elsewhere 503: retry shortly.
      return {
        status: envd ? 502 : 503,
        sandboxId,
        port,
        retryAfter: 1,
        message:
          route.state === RouteState.PAUSING ? 'The sandbox is pausing' : 'The sandbox is resuming',
      }
    case RouteState.PAUSED:
      return { status: envd ? 502 : 409, sandboxId, port, message: 'The sandbox is paused' }
    default:
      return notFound(sandboxId)
  }
}
