import { createServer, type Server, type Socket } from 'node:net'
import {
  type Cidr4,
  cidrContains,
  dialOnce,
  domainAllowed,
  type EgressPolicy,
  egressAllowsIp,
  ipv4ToInt,
  type Logger,
  splice,
} from '@warren/shared'
import type { Upstream } from '../dns/upstream.js'
import { alwaysDenied } from '../ranges.js'
import { readHttpHost } from './http-host.js'
import { readSni } from './sni.js'

/** What the proxy needs to know of the sandbox a connection comes from. */
export interface EgressSource {
  sandboxId: string
  /** Every policy the connection must satisfy (two during a rule update). */
  egress: EgressPolicy[]
}

interface Live {
  sandboxId: string
  name: string
  /** The address the proxy dialled for the name. */
  address: string
  client: Socket
}

const HEAD_TIMEOUT_MS = 10_000

/**
 * Warren's egress proxy for domain rules. Sandbox TCP to ports 80 and 443 that
 * no address rule allows is redirected here (one listener per port, so the
 * original port is known). The proxy reads the HTTP Host or TLS SNI, checks it
 * against the sandbox's rules, resolves the name itself (so /etc/hosts inside
 * the sandbox does not matter) and refuses names that resolve into denied
 * ranges. Connections whose name a later rule update forbids are cut.
 */
export class EgressProxy {
  private servers: Server[] = []
  private readonly live = new Set<Live>()

  constructor(
    private readonly opts: {
      httpPort: number
      tlsPort: number
      upstream: Upstream
      sourceFor: (ip: string) => EgressSource | undefined
      /** Ranges beyond the always-denied ones: the address pool, this host. */
      extraDenied: () => Cidr4[]
      log: Logger
    },
  ) {}

  async listen(): Promise<void> {
    for (const [port, kind] of [
      [this.opts.httpPort, 'http'],
      [this.opts.tlsPort, 'tls'],
    ] as const) {
      const server = createServer(
        (socket) => void this.handle(socket, kind, kind === 'http' ? 80 : 443),
      )
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, '0.0.0.0', resolve)
      })
      this.servers.push(server)
    }
  }

  /** Idempotent. */
  async close(): Promise<void> {
    const servers = this.servers
    this.servers = []
    for (const l of this.live) l.client.destroy()
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
  }

  /** Cuts the proxied connections of a sandbox that its (new) rules no longer allow. */
  enforce(sandboxId: string, policy: EgressPolicy | undefined): number {
    let cut = 0
    for (const l of this.live) {
      if (l.sandboxId === sandboxId && !this.mayContinue(policy, l)) {
        l.client.destroy()
        cut++
      }
    }
    return cut
  }

  private async handle(client: Socket, kind: 'http' | 'tls', port: number): Promise<void> {
    client.on('error', () => client.destroy())
    const source = this.opts.sourceFor(client.remoteAddress?.replace(/^::ffff:/, '') ?? '')
    if (!source) return void client.destroy()
    const head = await readHead(client, kind === 'tls' ? readSni : readHttpHost)
    if (!head) return void client.destroy()
    const { name, bytes } = head
    // Re-read the policy: it may have changed while the head arrived.
    const policies = this.opts.sourceFor(
      client.remoteAddress?.replace(/^::ffff:/, '') ?? '',
    )?.egress
    if (!name || !policies?.every((p) => domainAllowed(p.domains, name))) {
      this.opts.log.info(
        { sandboxId: source.sandboxId, name, port },
        'egress refused by domain rules',
      )
      return refuse(
        client,
        kind,
        `egress to '${name ?? '(no name)'}' is not allowed by this sandbox's network rules`,
      )
    }
    let address: string | undefined
    try {
      const addresses = await this.opts.upstream.resolve4(name)
      address = addresses.find((a) => policies.every((p) => this.reachable(p, a)))
      if (!address && addresses.length) {
        this.opts.log.info(
          { sandboxId: source.sandboxId, name, addresses },
          'egress refused: name resolves into denied ranges',
        )
        return refuse(client, kind, `'${name}' resolves only to denied addresses`)
      }
    } catch (err) {
      this.opts.log.warn({ err, name }, 'egress proxy could not resolve')
    }
    if (!address) return refuse(client, kind, `'${name}' does not resolve`)
    let upstream: Socket
    try {
      upstream = await dialOnce(address, port)
    } catch {
      return refuse(client, kind, `'${name}' (${address}:${port}) is unreachable`, 502)
    }
    const live: Live = { sandboxId: source.sandboxId, name, address, client }
    this.live.add(live)
    client.once('close', () => this.live.delete(live))
    // Relay segments as they come: with Nagle on either leg, a TLS handshake's
    // small writes met delayed ACKs and some requests stalled ~40 ms.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    upstream.write(bytes)
    splice(client, upstream)
  }

  /**
   * Whether a proxied connection may go on under a sandbox's new policy: its
   * name is allowed and its address reachable (what the proxy checks on a new
   * connection), or its address is allowed as such (a new connection there
   * would now go out directly: rules cleared, or the address allowed). A
   * loosening never cuts; a sandbox without a policy (gone) keeps nothing.
   */
  private mayContinue(policy: EgressPolicy | undefined, l: Live): boolean {
    if (!policy || alwaysDenied(l.address, this.opts.extraDenied())) return false
    if (domainAllowed(policy.domains, l.name) && this.reachable(policy, l.address)) return true
    return egressAllowsIp(policy, l.address)
  }

  /**
   * A resolved address may be used unless it is always denied, or an explicit
   * deny rule (not the catch-all 0.0.0.0/0 that domain rules require) names it
   * without an allow rule.
   */
  private reachable(policy: EgressPolicy, ip: string): boolean {
    if (alwaysDenied(ip, this.opts.extraDenied())) return false
    const n = ipv4ToInt(ip)
    if (policy.allow.some((c) => cidrContains(c, n))) return true
    return !policy.deny.some((c) => c.bits > 0 && cidrContains(c, n))
  }
}

/** Reads until the parser has its answer (the name and every byte read so far). */
function readHead(
  socket: Socket,
  parse: (b: Buffer) => string | null | 'incomplete',
): Promise<{ name: string | null; bytes: Buffer } | undefined> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0)
    const finish = (v: { name: string | null; bytes: Buffer } | undefined) => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.pause()
      resolve(v)
    }
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      const r = parse(buf)
      if (r !== 'incomplete') finish({ name: r?.toLowerCase() ?? null, bytes: buf })
    }
    const onEnd = () => finish(undefined)
    const timer = setTimeout(() => finish(undefined), HEAD_TIMEOUT_MS)
    socket.on('data', onData)
    socket.once('end', onEnd)
  })
}

function refuse(client: Socket, kind: 'http' | 'tls', message: string, status = 403): void {
  if (kind === 'http') {
    const body = `${message}\n`
    client.end(
      `HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Bad Gateway'}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  } else {
    client.destroy()
  }
}
