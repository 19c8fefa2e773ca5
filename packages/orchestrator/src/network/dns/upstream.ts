import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { isIPv4 } from 'node:net'
import { WarrenError } from '@warren/shared'
import * as packet from 'dns-packet'

export interface UpstreamAddress {
  host: string
  port: number
}

/** `ip[:port],...`, or the host's /etc/resolv.conf nameservers. */
export function parseUpstreams(value: string | undefined): UpstreamAddress[] {
  const entries = value
    ? value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : readFileSync('/etc/resolv.conf', 'utf8')
        .split('\n')
        .map((l) => /^nameserver\s+(\S+)/.exec(l)?.[1])
        .filter((s): s is string => !!s && isIPv4(s))
  return entries.map((e) => {
    const [host, port] = e.split(':')
    if (!host || !isIPv4(host) || (port !== undefined && !/^\d{1,5}$/.test(port))) {
      throw new WarrenError('invalid_argument', `invalid DNS upstream '${e}' (expected ip[:port])`)
    }
    return { host, port: port ? Number(port) : 53 }
  })
}

const TIMEOUT_MS = 2000
const MAX_CACHED = 10_000

/**
 * The resolvers Warren forwards to. Each exchange uses its own socket (a
 * random source port), so answers cannot be confused or spoofed across
 * queries; the first upstream that answers wins.
 */
export class Upstream {
  private readonly cache = new Map<string, { addresses: string[]; until: number }>()

  constructor(private readonly servers: UpstreamAddress[]) {}

  /** Sends a raw DNS message and returns the raw answer. */
  async exchange(message: Buffer): Promise<Buffer> {
    let lastError: unknown = new WarrenError('unavailable', 'no DNS upstream configured')
    for (const server of this.servers) {
      try {
        return await exchangeUdp(server, message)
      } catch (err) {
        lastError = err
      }
    }
    throw lastError
  }

  /**
   * IPv4 addresses of a name, cached for the answer's TTL (1 to 60 s; a
   * bounded number of names) so the egress proxy does not ask once per
   * connection.
   */
  async resolve4(name: string): Promise<string[]> {
    const key = name.toLowerCase()
    const hit = this.cache.get(key)
    if (hit && hit.until > Date.now()) return hit.addresses
    const { addresses, ttl } = await this.query4(key)
    if (this.cache.size >= MAX_CACHED) this.cache.clear()
    this.cache.set(key, { addresses, until: Date.now() + Math.min(Math.max(ttl, 1), 60) * 1000 })
    return addresses
  }

  private async query4(name: string): Promise<{ addresses: string[]; ttl: number }> {
    const id = Math.floor(Math.random() * 65535)
    const query = packet.encode({
      type: 'query',
      id,
      flags: packet.RECURSION_DESIRED,
      questions: [{ type: 'A', name, class: 'IN' }],
    })
    const answer = packet.decode(await this.exchange(query))
    if (answer.id !== id)
      throw new WarrenError('unavailable', `DNS answer for ${name} had a foreign id`)
    const records = (answer.answers ?? []).filter((a): a is packet.StringAnswer => a.type === 'A')
    return {
      addresses: records.map((a) => a.data),
      ttl: records.reduce((t, a) => Math.min(t, a.ttl ?? 0), records.length ? 60 : 1),
    }
  }
}

function exchangeUdp(server: UpstreamAddress, message: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4')
    const done = (err: Error | null, answer?: Buffer) => {
      clearTimeout(timer)
      socket.close()
      if (err) reject(err)
      else resolve(answer!)
    }
    const timer = setTimeout(
      () => done(new WarrenError('unavailable', `DNS upstream ${server.host} timed out`)),
      TIMEOUT_MS,
    )
    socket.once('error', (err) => done(err))
    socket.once('message', (msg, rinfo) => {
      if (
        rinfo.address === server.host &&
        rinfo.port === server.port &&
        msg.readUInt16BE(0) === message.readUInt16BE(0)
      ) {
        done(null, msg)
      }
    })
    socket.send(message, server.port, server.host)
  })
}
