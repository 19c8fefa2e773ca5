import { run } from '../exec.js'
import { ALWAYS_DENIED_V4 } from './ranges.js'

/**
 * The per-sandbox table lives inside the sandbox's own network namespace.
 * That namespace belongs to the host's user namespace, so root inside the
 * sandbox (root only of its own user namespace) holds no CAP_NET_ADMIN over
 * it and cannot change these rules. Each packet meets only its own sandbox's
 * rules, and the whole table is swapped in one nft transaction.
 */
export const SANDBOX_TABLE = 'sandbox'

export interface SandboxTableSpec {
  hostIp: string
  sandboxIp: string
  /** This host's own addresses: never reachable from a sandbox. */
  hostAddresses: string[]
  /** The address pool: other sandboxes are never reachable. */
  pool: string
  /** Ports of Warren's services on the host end of the veth (DNS, egress proxy). */
  services: { dnsPort?: number; egressProxyPort?: number }
}

export function renderSandboxTable(spec: SandboxTableSpec): string {
  const deny = [...ALWAYS_DENIED_V4, spec.pool, ...spec.hostAddresses.map((a) => `${a}/32`)]
  const allowServices: string[] = []
  const dnat: string[] = []
  if (spec.services.dnsPort) {
    const p = spec.services.dnsPort
    dnat.push(
      `ip daddr ${spec.hostIp} meta l4proto { tcp, udp } th dport 53 dnat ip to ${spec.hostIp}:${p}`,
    )
    allowServices.push(`ip daddr ${spec.hostIp} meta l4proto { tcp, udp } th dport ${p} accept`)
  }
  if (spec.services.egressProxyPort) {
    allowServices.push(`ip daddr ${spec.hostIp} tcp dport ${spec.services.egressProxyPort} accept`)
  }
  // "add table; delete table; table {...}" in one file is one transaction:
  // the old rules stay until the new ones are complete, and a failure keeps them.
  return `add table inet ${SANDBOX_TABLE}
delete table inet ${SANDBOX_TABLE}
table inet ${SANDBOX_TABLE} {
  set always_denied {
    type ipv4_addr
    flags interval
    auto-merge
    elements = { ${deny.join(', ')} }
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    # Servers bound to 127.0.0.1 inside the sandbox stay reachable on the same port.
    iifname "eth0" ip daddr ${spec.sandboxIp} meta l4proto tcp dnat ip to 127.0.0.1
  }
  chain output_nat {
    type nat hook output priority -100; policy accept;
${dnat.map((l) => `    ${l}`).join('\n')}
  }
  chain output {
    type filter hook output priority filter; policy accept;
    oifname "lo" accept
    ct state established,related accept
${allowServices.map((l) => `    ${l}`).join('\n')}
    jump egress
    ip daddr @always_denied reject with icmpx admin-prohibited
    meta nfproto ipv6 reject with icmpx admin-prohibited
  }
  chain egress {
  }
}
`
}

/** Host-wide rules of this node, in the host's namespace, keyed by the node prefix. */
export function renderHostTable(opts: {
  prefix: string
  pool: string
  services: number[]
}): string {
  const veths = `"${opts.prefix}-v*"`
  const svc = opts.services.length ? `{ ${opts.services.join(', ')} }` : ''
  const table = `warren_${opts.prefix}`
  return `add table inet ${table}
delete table inet ${table}
table inet ${table} {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname ${veths} ct state established,related accept
${svc ? `    iifname ${veths} meta l4proto { tcp, udp } th dport ${svc} accept\n` : ''}    # Sandboxes never open connections to the host itself.
    iifname ${veths} reject with icmpx admin-prohibited
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname ${veths} oifname ${veths} drop
    # From elsewhere, sandboxes are reached only through the node proxy.
    oifname ${veths} ct state established,related accept
    oifname ${veths} drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${opts.pool} oifname != ${veths} masquerade
  }
}
`
}

export async function applyInNetns(netns: string, ruleset: string): Promise<void> {
  await run('nsenter', [`--net=/run/netns/${netns}`, 'nft', '-f', '-'], { input: ruleset })
}

export async function applyOnHost(ruleset: string): Promise<void> {
  await run('nft', ['-f', '-'], { input: ruleset })
}

export async function deleteHostTable(prefix: string): Promise<void> {
  await run('nft', ['delete', 'table', 'inet', `warren_${prefix}`], { okCodes: [1] })
}
