import { createServer, type Server } from 'node:http'
import {
  createForwarder,
  ENVD_PORT,
  firstHeader,
  INTERNAL_HEADER_NAMES,
  INTERNAL_HEADERS,
  ingressAllows,
  isInitPath,
  keepConnectionsLong,
  listen,
  maskedHost,
  type NodeResolver,
  peerAddress,
  sandboxAddressOf,
  tokenMatches,
  WarrenError,
} from '@warren/shared'
import type { SandboxNode } from '../node.js'

/** A port that refuses is retried for about a second before the client gets 502. */
const DIAL_RETRY = { retries: 5, initialDelayMs: 30 }

/**
 * The node proxy's resolution of a request for a sandbox on this node: envd's
 * /init is refused before the lookup, the sandbox must be running, ingress
 * rules are checked against the client address (fail-closed), the Host is
 * masked if asked, and X-Forwarded-* are set.
 */
export function createNodeResolver(node: SandboxNode): NodeResolver {
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
        ...(policy?.httpsPorts.includes(port) ? { tls: true } : {}),
        removeHeaders: INTERNAL_HEADER_NAMES,
        setHeaders: {
          'x-forwarded-for': h.forwardedFor,
          'x-forwarded-proto': h.forwardedProto,
          'x-forwarded-host': h.forwardedHost,
          ...mask,
        },
        unreachable: () => ({
          status: 502,
          sandboxId,
          port,
          message: 'The sandbox is running but port is not open',
        }),
      },
    }
  }
}

/**
 * The node proxy as a server: edge proxies in other processes name the
 * sandbox, port and client in internal headers; direct callers (on the
 * node's own network) may use the `{port}-{id}.{domain}` Host.
 */
export function createNodeProxy(node: SandboxNode): Server {
  const resolve = createNodeResolver(node)
  const secret = node.cfg.nodeProxySecret
  const forwarder = createForwarder(async (req) => {
    const peer = peerAddress(req.socket)
    // Internal headers are believed from an edge that knows the secret, or —
    // without a configured secret — from this host only. Anyone else is a
    // direct caller: its own address counts, and its headers are dropped.
    const trusted = secret
      ? tokenMatches(firstHeader(req, INTERNAL_HEADERS.secret), secret)
      : isLoopback(peer)
    const fromEdge = trusted && firstHeader(req, INTERNAL_HEADERS.sandboxId) !== undefined
    const address = sandboxAddressOf({
      host: req.headers.host,
      sandboxId: fromEdge ? firstHeader(req, INTERNAL_HEADERS.sandboxId) : undefined,
      sandboxPort: fromEdge ? firstHeader(req, INTERNAL_HEADERS.sandboxPort) : undefined,
    })
    if (!address) return { error: { status: 400, message: 'request names no sandbox' } }
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
  const server = createServer((req, res) => void forwarder.onRequest(req, res))
  keepConnectionsLong(server)
  server.on('upgrade', (req, socket, head) => void forwarder.onUpgrade(req, socket, head))
  server.on('close', () => void forwarder.close())
  return server
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.')
}

export async function listenNodeProxy(node: SandboxNode, host: string, port: number) {
  const server = createNodeProxy(node)
  return { server, url: await listen(server, host, port) }
}
