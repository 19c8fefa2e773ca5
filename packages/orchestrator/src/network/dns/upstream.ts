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

/**
 * The resolvers Warren forwards to. Each exchange uses its own socket (a
 * random source port), so answers cannot be confused or spoofed across
 * queries; the first upstream that answers wins.
 */
export class Upstream {
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

  /** IPv4 addresses of a name. */
  async resolve4(name: string): Promise<string[]> {
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
    return (answer.answers ?? [])
      .filter((a): a is packet.StringAnswer => a.type === 'A')
      .map((a) => a.data)
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
