import { type LookupAddress, lookup } from 'node:dns'
import { isIP } from 'node:net'
import { WarrenError } from '@warren/shared'
import ipaddr from 'ipaddr.js'

/**
 * Where webhook deliveries may go. A webhook's URL is the team's choice, and
 * the API that calls it sits inside the operator's network: without a
 * check, a URL naming the loopback, a private address or the cloud metadata
 * service would make the API a proxy into that network (SSRF). Allowed are
 * public unicast addresses; with `allowPrivate` (WARREN_WEBHOOK_ALLOW_PRIVATE,
 * for an operator's internal receivers) also loopback, private, unique-local
 * and carrier-grade NAT ranges. Link-local (metadata), multicast,
 * unspecified, reserved and tunnelled-v4 ranges are refused always.
 */
const PRIVATE_RANGES = new Set(['loopback', 'private', 'uniqueLocal', 'carrierGradeNat'])

/** Why an address is refused, or undefined when deliveries may go there. */
export function refusedAddress(ip: string, allowPrivate: boolean): string | undefined {
  if (!ipaddr.isValid(ip)) return `'${ip}' is not an address`
  let addr = ipaddr.parse(ip)
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress())
    addr = (addr as ipaddr.IPv6).toIPv4Address()
  const range = addr.range()
  if (range === 'unicast') return undefined
  if (allowPrivate && PRIVATE_RANGES.has(range)) return undefined
  return `${ip} is a ${range} address${PRIVATE_RANGES.has(range) ? ' (WARREN_WEBHOOK_ALLOW_PRIVATE allows it)' : ''}`
}

/**
 * A registration's URL: http or https, no credentials in it, and, when its
 * host is an address (or localhost), an allowed one. A name is checked
 * again at each delivery, on what it resolves to then.
 */
export function checkWebhookUrl(raw: string, allowPrivate: boolean): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new WarrenError('invalid_argument', 'url: not a URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new WarrenError('invalid_argument', 'url: only http and https URLs are delivered to')
  if (url.username || url.password)
    throw new WarrenError('invalid_argument', 'url: credentials in the URL are not accepted')
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  const local = host === 'localhost' || host.endsWith('.localhost')
  const refused = isIP(host)
    ? refusedAddress(host, allowPrivate)
    : local && !allowPrivate
      ? `${host} is the loopback (WARREN_WEBHOOK_ALLOW_PRIVATE allows it)`
      : undefined
  if (refused) throw new WarrenError('invalid_argument', `url: ${refused}`)
  return url
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void

/**
 * The DNS lookup a delivery connects with: the name is resolved once and
 * every address it gives must be allowed; the connection then goes to one
 * of exactly those addresses, so a name that answers differently a moment
 * later (DNS rebinding) cannot slip a refused address past the check.
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean }, cb: LookupCallback): void => {
    lookup(hostname, { all: true }, (err, addresses) => {
      if (err) return cb(err, [])
      const refused = addresses.map((a) => refusedAddress(a.address, allowPrivate)).find(Boolean)
      if (refused || !addresses.length) {
        const e = new Error(
          `${hostname}: ${refused ?? 'no address'}; not delivered`,
        ) as NodeJS.ErrnoException
        e.code = 'EWARRENREFUSED'
        return cb(e, [])
      }
      if (options.all) return cb(null, addresses)
      const first = addresses[0]!
      cb(null, first.address, first.family)
    })
  }
}
