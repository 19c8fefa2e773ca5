import { type EgressPolicy, egressAllowsIp } from '@warren/shared'
import { run } from '../exec.js'
import { alwaysDenied } from './ranges.js'

interface Flow {
  proto: string
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
      /^(tcp|udp)\s+\d+\s+\d+\s+(?:[A-Z_]+\s+)?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)\s+(?:\[UNREPLIED\]\s+)?src=(\S+)/.exec(
        line,
      )
    if (m)
      out.push({
        proto: m[1]!,
        src: m[2]!,
        dst: m[3]!,
        sport: m[4]!,
        dport: m[5]!,
        replySrc: m[6]!,
      })
  }
  return out
}

/**
 * Cuts the sandbox's outbound flows that the new rules deny: their conntrack
 * entries go, so the next packet meets the new rules as a new flow and is
 * rejected. Allowed flows and inbound ones (the node proxy's) are untouched,
 * as are flows to Warren's own services on the gateway — also those DNAT'd
 * there (the egress proxy judges its connections by name and cuts its own):
 * their original destination is the denied address the sandbox dialled, but
 * cutting their entry would strand the connection, not end it.
 */
export async function cutDeniedFlows(
  netns: string,
  sandboxIp: string,
  gateway: string,
  policy: EgressPolicy | undefined,
): Promise<number> {
  const ns = `--net=/run/netns/${netns}`
  const listing = await run('nsenter', [ns, 'conntrack', '-L'], { okCodes: [1] })
  let cut = 0
  for (const f of parseFlows(listing)) {
    if (f.src !== sandboxIp || f.dst === gateway || f.replySrc === gateway) continue
    const allowed = !alwaysDenied(f.dst) && (!policy || egressAllowsIp(policy, f.dst))
    if (allowed) continue
    await run(
      'nsenter',
      [
        ns,
        'conntrack',
        '-D',
        '-p',
        f.proto,
        '-s',
        f.src,
        '-d',
        f.dst,
        '--sport',
        f.sport,
        '--dport',
        f.dport,
      ],
      {
        okCodes: [1],
      },
    )
    cut++
  }
  return cut
}
