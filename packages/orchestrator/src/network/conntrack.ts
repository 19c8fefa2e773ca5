import { type EgressPolicy, egressAllowsIp } from '@warren/shared'
import { run } from '../exec.js'
import { alwaysDenied } from './ranges.js'

interface Flow {
  proto: string
  /** TCP state ('' for UDP). */
  state: string
  src: string
  dst: string
  sport: string
  dport: string
  /** Source of the reply tuple: differs from `dst` when the flow was DNAT'd. */
  replySrc: string
}

/** Original-direction tuples (and the reply's source) of `conntrack -L` lines. */
export function parseFlows(text: string): Flow[] {
  const out: Flow[] = []
  for (const line of text.split('\n')) {
    const m =
      /^(tcp|udp)\s+\d+\s+\d+\s+(?:([A-Z_]+)\s+)?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)\s+(?:\[UNREPLIED\]\s+)?src=(\S+)/.exec(
        line,
      )
    if (m)
      out.push({
        proto: m[1]!,
        state: m[2] ?? '',
        src: m[3]!,
        dst: m[4]!,
        sport: m[5]!,
        dport: m[6]!,
        replySrc: m[7]!,
      })
  }
  return out
}

/** TCP entries that only linger after the connection ended: nothing to cut. */
const DEAD = new Set(['TIME_WAIT', 'CLOSE'])

/**
 * The protocol and destination of every live outbound flow of the sandbox
 * that the new rules deny, once each. Allowed flows and inbound ones (the
 * node proxy's) are left alone, as are flows to Warren's own services on the
 * gateway — also those DNAT'd there (the egress proxy judges its connections
 * by name and cuts its own): their original destination is the denied
 * address the sandbox dialled, but cutting their entry would strand the
 * connection, not end it.
 */
export function deniedDestinations(
  flows: Flow[],
  sandboxIp: string,
  gateway: string,
  policy: EgressPolicy | undefined,
): Array<{ proto: string; dst: string }> {
  const out = new Map<string, { proto: string; dst: string }>()
  for (const f of flows) {
    if (f.src !== sandboxIp || f.dst === gateway || f.replySrc === gateway) continue
    if (DEAD.has(f.state)) continue
    const allowed = !alwaysDenied(f.dst) && (!policy || egressAllowsIp(policy, f.dst))
    if (!allowed) out.set(`${f.proto} ${f.dst}`, { proto: f.proto, dst: f.dst })
  }
  return [...out.values()]
}

/**
 * Cuts the sandbox's outbound flows that the new rules deny: their conntrack
 * entries go, so the next packet meets the new rules as a new flow and is
 * rejected. One deletion per denied destination (its flows that were not
 * NAT'd: reply source = destination), however many flows it has: a busy
 * sandbox holds thousands of entries, and one tool run per flow made an
 * update take seconds. Returns the number of destinations cut.
 */
export async function cutDeniedFlows(
  netns: string | undefined,
  sandboxIp: string,
  gateway: string,
  policy: EgressPolicy | undefined,
): Promise<number> {
  // undefined: the host's own table (a gVisor sandbox's flows are tracked there).
  const conntrack = (args: string[]) =>
    netns
      ? run('nsenter', [`--net=/run/netns/${netns}`, 'conntrack', ...args], { okCodes: [1] })
      : run('conntrack', args, { okCodes: [1] })
  const listing = await conntrack(['-L', ...(netns ? [] : ['-s', sandboxIp])])
  const denied = deniedDestinations(parseFlows(listing), sandboxIp, gateway, policy)
  for (const { proto, dst } of denied) {
    await conntrack(['-D', '-p', proto, '-s', sandboxIp, '-d', dst, '-r', dst])
  }
  return denied.length
}
