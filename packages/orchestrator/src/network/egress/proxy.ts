import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import {
  type Cidr4,
  createForwarder,
  type EgressPolicy,
  type Logger,
  listen,
  type NativeCarry,
  peerAddress,
  type Resolution,
  readSni,
  sendProxyError,
} from '@warren/shared'
import type { Upstream } from '../dns/upstream.js'
import { HttpForwarder } from './http-forward.js'
import { EgressJudge } from './judge.js'
import { dialRelay, joinRelay } from './relay.js'

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
  cut(): void
}

const HEAD_TIMEOUT_MS = 10_000
const NOT_A_PATH = { status: 400, message: 'only origin-form request targets are proxied' }
/** Proxied connections (TLS) and requests (HTTP) one sandbox may have open. */
const MAX_PER_SANDBOX = 1024

/**
 * Warren's egress proxy for domain rules. Sandbox TCP to ports 80 and 443 that
 * no address rule allows is redirected here, one listener per port. Port 80
 * is plain HTTP: the proxy terminates it and judges every request by its Host
 * (a kept-alive connection cannot switch to another name). Port 443 is judged
 * by the TLS SNI of the connection. Names are resolved by the proxy itself (so
 * /etc/hosts inside the sandbox does not matter) and dialled only at addresses
 * the rules let through. Connections a later rule update forbids are cut.
 */
export class EgressProxy {
  private servers: Server[] = []
  /** Open proxied connections (TLS) and requests (HTTP), by sandbox. */
  private readonly live = new Map<string, Set<Live>>()
  private readonly judge: EgressJudge
  /** Upgrades (WebSocket) only: they are spliced once judged. */
  private readonly http: ReturnType<typeof createForwarder>
  private readonly forwarder: HttpForwarder

  constructor(
    private readonly opts: {
      httpPort: number
      tlsPort: number
      upstream: Upstream
      sourceFor: (ip: string) => EgressSource | undefined
      extraDenied: Cidr4[]
      log: Logger
      /** Carries large HTTP bodies in the kernel (splice); undefined: they are copied in JavaScript. */
      carry?: NativeCarry | undefined
    },
  ) {
    this.judge = new EgressJudge(opts.upstream, opts.extraDenied)
    this.forwarder = new HttpForwarder(opts.carry)
    // An absolute-form target would let the server route by a name other
    // than the Host that was judged: the forwarder refuses it first.
    this.http = createForwarder((req) => this.resolveHttp(req), { notAPath: NOT_A_PATH })
  }

  async listen(): Promise<void> {
    const http = createHttpServer((req, res) => void this.onHttpRequest(req, res))
    http.on('upgrade', (req, socket, head) => void this.http.onUpgrade(req, socket, head))
    const tls = createServer((socket) => void this.handleTls(socket))
    for (const [server, port] of [
      [http, this.opts.httpPort],
      [tls, this.opts.tlsPort],
    ] as const) {
      await listen(server, '0.0.0.0', port)
      this.servers.push(server)
    }
  }

  /** Idempotent. */
  async close(): Promise<void> {
    const servers = this.servers
    this.servers = []
    for (const set of this.live.values()) for (const l of set) l.cut()
    this.forwarder.close()
    await this.http.close()
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
  }

  /** Cuts the proxied connections of a sandbox that its (new) rules no longer allow. */
  enforce(sandboxId: string, policy: EgressPolicy | undefined): number {
    let cut = 0
    for (const l of this.live.get(sandboxId) ?? []) {
      if (!this.judge.mayContinue(policy, l.name, l.address)) {
        l.cut()
        cut++
      }
    }
    return cut
  }

  private source(socket: Socket): EgressSource | undefined {
    return this.opts.sourceFor(peerAddress(socket))
  }

  /** Registers an open connection; undefined when the sandbox has too many. Untracking is idempotent. */
  private track(l: Live): (() => void) | undefined {
    let set = this.live.get(l.sandboxId)
    if (!set) {
      set = new Set()
      this.live.set(l.sandboxId, set)
    }
    if (set.size >= MAX_PER_SANDBOX) return undefined
    set.add(l)
    const own = set
    return () => {
      own.delete(l)
      if (!own.size && this.live.get(l.sandboxId) === own) this.live.delete(l.sandboxId)
    }
  }

  /** One HTTP request (not an upgrade) from a sandbox: judged, then forwarded. */
  private async onHttpRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // An absolute-form target would let the server route by a name other
    // than the Host that was judged.
    let resolution: Resolution = { error: NOT_A_PATH }
    try {
      if (req.url?.startsWith('/')) resolution = await this.resolveHttp(req)
    } catch {
      resolution = { error: { status: 500, message: 'proxy error' } }
    }
    if ('error' in resolution) {
      req.resume()
      sendProxyError(req, res, resolution.error)
      return
    }
    const t = resolution.target
    await this.forwarder.forward(req, res, t.host, t.port, t.unreachable)
  }

  /** One HTTP request (or upgrade) from a sandbox, judged by its Host. */
  private async resolveHttp(req: IncomingMessage): Promise<Resolution> {
    const source = this.source(req.socket)
    if (!source) return { error: { status: 403, message: 'not a sandbox of this node' } }
    const name = hostName(req.headers.host)
    const verdict = await this.judge.judge(source.egress, name)
    if (!verdict.ok) {
      this.opts.log.info(
        { sandboxId: source.sandboxId, name, why: verdict.message },
        'egress refused',
      )
      return { error: { status: verdict.status, message: verdict.message } }
    }
    const untrack = this.track({
      sandboxId: source.sandboxId,
      name: name!,
      address: verdict.address,
      cut: () => req.socket.destroy(),
    })
    if (!untrack)
      return { error: { status: 403, message: 'too many egress connections for this sandbox' } }
    // A request closes when its response is done or its socket goes; an
    // upgraded one is over only when the socket closes.
    if (req.headers.upgrade) req.socket.once('close', untrack)
    else req.once('close', untrack)
    return {
      target: {
        host: verdict.address,
        port: 80,
        unreachable: () => ({
          status: 502,
          message: `'${name}' (${verdict.address}:80) is unreachable`,
        }),
      },
    }
  }

  /** A TLS connection from a sandbox, judged by its SNI and then spliced. */
  private async handleTls(client: Socket): Promise<void> {
    client.on('error', () => client.destroy())
    if (!this.source(client)) return void client.destroy()
    const head = await readHead(client)
    // Re-read the source: the policy may have changed while the head arrived.
    const source = this.source(client)
    if (!head || !source) return void client.destroy()
    const verdict = await this.judge.judge(source.egress, head.name)
    if (!verdict.ok) {
      this.opts.log.info(
        { sandboxId: source.sandboxId, name: head.name, why: verdict.message },
        'egress refused',
      )
      return void client.destroy()
    }
    let upstream: Socket
    try {
      upstream = await dialRelay(verdict.address, 443, client)
    } catch {
      return void client.destroy()
    }
    const untrack = this.track({
      sandboxId: source.sandboxId,
      name: head.name!,
      address: verdict.address,
      cut: () => client.destroy(),
    })
    if (!untrack) {
      upstream.destroy()
      return void client.destroy()
    }
    client.once('close', untrack)
    // Relay segments as they come: with Nagle on either leg, a TLS handshake's
    // small writes met delayed ACKs and some requests stalled ~40 ms.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    upstream.write(head.bytes)
    joinRelay(client, upstream)
  }
}

/** The host name of a Host header, lower case, without the port; null when absent or IPv6. */
export function hostName(host: string | undefined): string | null {
  if (!host || host.startsWith('[')) return null
  return host.replace(/:\d+$/, '').toLowerCase() || null
}

/** Reads a ClientHello: the SNI (null when absent) and every byte read so far. */
function readHead(socket: Socket): Promise<{ name: string | null; bytes: Buffer } | undefined> {
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
      const r = readSni(buf)
      if (r !== 'incomplete') finish({ name: r?.toLowerCase() ?? null, bytes: buf })
    }
    const onEnd = () => finish(undefined)
    const timer = setTimeout(() => finish(undefined), HEAD_TIMEOUT_MS)
    socket.on('data', onData)
    socket.once('end', onEnd)
  })
}
