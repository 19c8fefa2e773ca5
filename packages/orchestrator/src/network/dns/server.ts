import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server, type Socket } from 'node:net'
import { domainAllowed, type EgressPolicy, type Logger, listen, peerAddress } from '@warren/shared'
import * as packet from 'dns-packet'
import type { Upstream } from './upstream.js'

/** The egress policies a query's source must satisfy (undefined: not a sandbox). */
export type PolicyLookup = (sourceIp: string) => EgressPolicy[] | undefined

const SERVFAIL = 2
const REFUSED = 5

/**
 * An answer with no records and this rcode. dns-packet encodes the rcode
 * only from the flags word (its `rcode` field is decode-only), so it goes
 * in the flags' low four bits.
 */
export function failure(query: packet.Packet, rcode: number): Buffer {
  return packet.encode({
    type: 'response',
    id: query.id ?? 0,
    flags: packet.RECURSION_AVAILABLE | ((query.flags ?? 0) & packet.RECURSION_DESIRED) | rcode,
    questions: query.questions ?? [],
  })
}

/** What Warren's DNS says to a query, before any forwarding. */
export function dnsVerdict(
  policies: EgressPolicy[] | undefined,
  name: string,
): 'forward' | 'refuse' {
  if (!policies) return 'refuse'
  // Under deny-all, DNS would be an exfiltration channel: only allowed names resolve.
  const refused = policies.some((p) => p.denyAll && !domainAllowed(p.domains, name))
  return refused ? 'refuse' : 'forward'
}

/**
 * Warren's DNS for sandboxes, on the host end of every veth (sandboxes reach
 * it as <gateway>:53, redirected here). It answers only its own sandboxes,
 * refuses names their rules do not allow, and forwards the rest upstream.
 */
export class DnsServer {
  private udp: UdpSocket | undefined
  private tcp: Server | undefined

  constructor(
    private readonly opts: {
      port: number
      upstream: Upstream
      policyFor: PolicyLookup
      log: Logger
    },
  ) {}

  async listen(): Promise<void> {
    const udp = createSocket('udp4')
    udp.on('message', (msg, rinfo) => {
      void this.answer(msg, rinfo.address).then((reply) => {
        if (reply) udp.send(reply, rinfo.port, rinfo.address)
      })
    })
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(this.opts.port, '0.0.0.0', () => resolve())
    })
    this.udp = udp
    const tcp = createServer((socket) => this.serveTcp(socket))
    await listen(tcp, '0.0.0.0', this.opts.port)
    this.tcp = tcp
  }

  /** Idempotent. */
  async close(): Promise<void> {
    const { udp, tcp } = this
    this.udp = undefined
    this.tcp = undefined
    udp?.close()
    await new Promise<void>((resolve) => (tcp ? tcp.close(() => resolve()) : resolve()))
  }

  /** The reply to one message, or undefined to stay silent (not a sandbox, not a query). */
  async answer(msg: Buffer, sourceIp: string): Promise<Buffer | undefined> {
    let query: packet.Packet
    try {
      query = packet.decode(msg)
    } catch {
      return undefined
    }
    const policy = this.opts.policyFor(sourceIp)
    if (!policy || query.type !== 'query') return undefined
    const name = query.questions?.[0]?.name ?? ''
    if (dnsVerdict(policy, name) === 'refuse') return this.refuse(query)
    try {
      return await this.opts.upstream.exchange(msg)
    } catch (err) {
      this.opts.log.warn({ err, name }, 'DNS upstream failed')
      return failure(query, SERVFAIL)
    }
  }

  private refuse(query: packet.Packet): Buffer {
    return failure(query, REFUSED)
  }

  /** DNS over TCP: two-byte length prefixes; one connection may carry several queries. */
  private serveTcp(socket: Socket): void {
    let buf = Buffer.alloc(0)
    socket.setTimeout(10_000, () => socket.destroy())
    socket.on('error', () => socket.destroy())
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0)
        if (buf.length < 2 + len) break
        const msg = buf.subarray(2, 2 + len)
        buf = buf.subarray(2 + len)
        void this.answer(Buffer.from(msg), peerAddress(socket)).then((reply) => {
          if (!reply) return socket.destroy()
          const head = Buffer.alloc(2)
          head.writeUInt16BE(reply.length)
          socket.write(Buffer.concat([head, reply]))
        })
      }
      if (buf.length > 65_537) socket.destroy()
    })
  }
}
