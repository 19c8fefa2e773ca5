import {
  type Cidr4,
  cidrSize,
  cidrToString,
  ipv4ToInt,
  parseCidr4,
  WarrenError,
} from '@warren/shared'
import { run } from '../exec.js'

/** An IPv4 route as `ip -j route show table all` prints it. */
export interface HostRoute {
  dst: string
  dev?: string
  type?: string
}

/** An interface's IPv4 addresses as `ip -j addr show` prints them. */
export interface HostInterface {
  ifname: string
  addr_info?: Array<{ local: string; prefixlen: number }>
}

function overlaps(a: Cidr4, b: Cidr4): boolean {
  return a.network < b.network + cidrSize(b) && b.network < a.network + cidrSize(a)
}

/** `10.0.0.1/24` → 10.0.0.0/24 (host bits dropped). */
function networkOf(address: string, bits: number): Cidr4 {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  return { network: (ipv4ToInt(address) & mask) >>> 0, bits }
}

/**
 * What on the host overlaps this node's address pool without being this
 * node's: addresses, and routes through any device but the node's own veths
 * (`<prefix>-v<n>`, from this run or one it adopts). The default route
 * covers everything and says nothing. Two nodes given one pool would hand
 * out the same addresses and route each other's sandboxes' traffic: a node
 * must find its pool free.
 */
export function poolConflicts(
  pool: string,
  prefix: string,
  interfaces: HostInterface[],
  routes: HostRoute[],
): string[] {
  const own = new RegExp(`^${prefix}-v\\d+$`)
  const range = parseCidr4(pool)
  const found: string[] = []
  for (const i of interfaces) {
    if (own.test(i.ifname)) continue
    for (const a of i.addr_info ?? []) {
      if (overlaps(range, networkOf(a.local, a.prefixlen)))
        found.push(`address ${a.local}/${a.prefixlen} on ${i.ifname}`)
    }
  }
  for (const r of routes) {
    if (r.dst === 'default' || (r.dev && own.test(r.dev))) continue
    const [addr, len] = r.dst.split('/')
    let dst: Cidr4
    try {
      dst = networkOf(addr ?? '', len === undefined ? 32 : Number(len))
    } catch {
      continue
    }
    if (overlaps(range, dst))
      found.push(
        `route ${cidrToString(dst)}${r.type ? ` (${r.type})` : ''} via ${r.dev ?? 'no device'}`,
      )
  }
  return [...new Set(found)]
}

/** Refuses to start on a pool the host already uses for something else. */
export async function checkPoolIsFree(pool: string, prefix: string): Promise<void> {
  const [addrs, routes] = await Promise.all([
    run('ip', ['-j', '-4', 'addr', 'show']),
    run('ip', ['-j', '-4', 'route', 'show', 'table', 'all']),
  ])
  const conflicts = poolConflicts(
    pool,
    prefix,
    JSON.parse(addrs) as HostInterface[],
    JSON.parse(routes) as HostRoute[],
  )
  if (conflicts.length) {
    throw new WarrenError(
      'conflict',
      `address pool ${pool} (WARREN_ADDRESS_POOL) overlaps what this host uses for something else: ${conflicts.slice(0, 3).join('; ')}${conflicts.length > 3 ? '; …' : ''}. Give each node on a machine its own pool, outside the host's networks`,
    )
  }
}
