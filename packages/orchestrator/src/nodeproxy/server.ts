import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  createForwarder,
  ENVD_PORT,
  INTERNAL_HEADER_NAMES,
  INTERNAL_HEADERS,
  ingressAllows,
  isInitPath,
  maskedHost,
  type Resolution,
  RetryingAgent,
  sandboxAddressOf,
  WarrenError,
} from '@warren/shared'
import type { SandboxNode } from '../node.js'

/** A port that refuses is retried for about a second before the client gets 502. */
const DIAL_RETRY = { retries: 5, initialDelayMs: 30 }

/**
 * The node proxy: forwards HTTP and WebSocket traffic to a sandbox's address
 * on this node. Edge proxies name the sandbox and port in internal headers;
 * direct callers may use the `{port}-{id}.{domain}` Host.
 */
export function createNodeProxy(node: SandboxNode): Server {
  const agent = new RetryingAgent(DIAL_RETRY)
  const resolve = async (req: IncomingMessage): Promise<Resolution> => {
    const address = sandboxAddressOf({
      host: req.headers.host,
      sandboxId: header(req, INTERNAL_HEADERS.sandboxId),
      sandboxPort: header(req, INTERNAL_HEADERS.sandboxPort),
    })
    if (!address) return { error: { status: 400, message: 'request names no sandbox' } }
    const { sandboxId, port } = address
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
    // From an edge proxy, the client address it derived ('' when it could not
    // tell: refused wherever a deny rule applies); a direct caller's own otherwise.
    const fromEdge = header(req, INTERNAL_HEADERS.sandboxId) !== undefined
    const clientIp = fromEdge
      ? (header(req, INTERNAL_HEADERS.clientIp) ?? '')
      : (req.socket.remoteAddress ?? '')
    const policy = node.ctx.policies.get(sandboxId)
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
    const originalHost = header(req, 'x-forwarded-host') ?? req.headers.host ?? ''
    const mask: Record<string, string> = policy?.maskRequestHost
      ? { host: maskedHost(policy.maskRequestHost, port) }
      : {}
    return {
      target: {
        host: record.sandboxIp,
        port,
        agent,
        dialRetry: DIAL_RETRY,
        removeHeaders: INTERNAL_HEADER_NAMES,
        setHeaders: {
          // The edge proxy sends the chain it trusts; a direct caller's address otherwise.
          'x-forwarded-for': fromEdge ? (header(req, 'x-forwarded-for') ?? clientIp) : clientIp,
          'x-forwarded-proto': header(req, 'x-forwarded-proto') ?? 'http',
          'x-forwarded-host': originalHost,
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
  const forwarder = createForwarder(resolve)
  const server = createServer((req, res) => void forwarder.onRequest(req, res))
  server.on('upgrade', (req, socket, head) => void forwarder.onUpgrade(req, socket, head))
  server.on('close', () => agent.destroy())
  return server
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

export async function listenNodeProxy(node: SandboxNode, host: string, port: number) {
  const server = createNodeProxy(node)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  // An IPv6 listen address (e.g. `::`) is bracketed, or the URL does not parse.
  const urlHost = host.includes(':') ? `[${host}]` : host
  return { server, url: `http://${urlHost}:${(server.address() as AddressInfo).port}` }
}
