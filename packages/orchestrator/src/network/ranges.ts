import { type Cidr4, cidrContains, ipv4ToInt, parseCidr4 } from '@warren/shared'

/**
 * Destinations a sandbox never reaches, whatever its rules say: this host and
 * its neighbours live in these ranges, and so do cloud metadata services.
 */
export const ALWAYS_DENIED_V4 = [
  '0.0.0.0/8', // "this network"
  '10.0.0.0/8', // private
  '100.64.0.0/10', // carrier-grade NAT
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local, cloud metadata
  '172.16.0.0/12', // private
  '192.0.0.0/24', // IETF protocol assignments
  '192.168.0.0/16', // private
  '198.18.0.0/15', // benchmarking
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, broadcast
] as const

const ALWAYS_DENIED = ALWAYS_DENIED_V4.map((c) => parseCidr4(c))

/** Whether an address is in the always-denied ranges or among `extra` (the pool, the host's own). */
export function alwaysDenied(ip: string, extra: Cidr4[] = []): boolean {
  const n = ipv4ToInt(ip)
  return ALWAYS_DENIED.some((c) => cidrContains(c, n)) || extra.some((c) => cidrContains(c, n))
}
