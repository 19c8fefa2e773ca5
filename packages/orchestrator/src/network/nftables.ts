import { type Cidr4, cidrToString, type EgressPolicy, hasDomainRules } from '@warren/shared'
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
  /** Ports of Warren's services on the host end of the veth. */
  services: ServicePorts
  /** The user's egress rules (none: everything outside the always-denied ranges). */
  egress?: EgressPolicy | undefined
}

export interface ServicePorts {
  dnsPort?: number | undefined
  egressHttpPort?: number | undefined
  egressTlsPort?: number | undefined
}

function elements(cidrs: Cidr4[]): string {
  return cidrs.length ? `elements = { ${cidrs.map(cidrToString).join(', ')} }` : ''
}

/**
 * Order of the output chain: loopback and established flows, Warren's own
 * services on the gateway, then the always-denied ranges (which no user rule
 * can open), then the user's rules (allow wins over deny). With domain rules,
 * TCP 80/443 to destinations not allowed by address is redirected to the
 * egress proxy, which judges the name in the Host header or TLS SNI.
 */
export function renderSandboxTable(spec: SandboxTableSpec): string {
  const deny = [...ALWAYS_DENIED_V4, spec.pool, ...spec.hostAddresses.map((a) => `${a}/32`)]
  const { dnsPort, egressHttpPort, egressTlsPort } = spec.services
  const gw = spec.hostIp
  const nat: string[] = []
  const services: string[] = []
  if (dnsPort) {
    nat.push(`ip daddr ${gw} meta l4proto { tcp, udp } th dport 53 dnat ip to ${gw}:${dnsPort}`)
    services.push(`ip daddr ${gw} meta l4proto { tcp, udp } th dport ${dnsPort} accept`)
  }
  const egress = spec.egress
  if (egress && hasDomainRules(egress) && egressHttpPort && egressTlsPort) {
    const notAllowed = 'ip daddr != @always_denied ip daddr != @allow_out'
    nat.push(`tcp dport 80 ${notAllowed} dnat ip to ${gw}:${egressHttpPort}`)
    nat.push(`tcp dport 443 ${notAllowed} dnat ip to ${gw}:${egressTlsPort}`)
    services.push(`ip daddr ${gw} tcp dport { ${egressHttpPort}, ${egressTlsPort} } accept`)
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
  set allow_out {
    type ipv4_addr
    flags interval
    auto-merge
    ${elements(egress?.allow ?? [])}
  }
  set deny_out {
    type ipv4_addr
    flags interval
    auto-merge
    ${elements(egress?.deny ?? [])}
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    # Servers bound to 127.0.0.1 inside the sandbox stay reachable on the same port.
    iifname "eth0" ip daddr ${spec.sandboxIp} meta l4proto tcp dnat ip to 127.0.0.1
  }
  chain output_nat {
    type nat hook output priority -100; policy accept;
${nat.map((l) => `    ${l}`).join('\n')}
  }
  chain output {
    type filter hook output priority filter; policy accept;
    oifname "lo" accept
    ct state established,related accept
${services.map((l) => `    ${l}`).join('\n')}
    ip daddr @always_denied reject with icmpx admin-prohibited
    meta nfproto ipv6 reject with icmpx admin-prohibited
    ip daddr @allow_out accept
    # A TCP packet that opens nothing is a flow whose entry an update cut:
    # reset it, so the sandbox's socket fails now instead of retransmitting.
    ip daddr @deny_out tcp flags ! syn reject with tcp reset
    ip daddr @deny_out reject with icmpx admin-prohibited
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

/** Removes this node's host-wide table (a node with no sandboxes left, stopping). */
export async function removeHostTable(prefix: string): Promise<void> {
  const table = `warren_${prefix}`
  await applyOnHost(`add table inet ${table}\ndelete table inet ${table}\n`)
}

export async function applyInNetns(netns: string, ruleset: string): Promise<void> {
  await run('nsenter', [`--net=/run/netns/${netns}`, 'nft', '-f', '-'], { input: ruleset })
}

export async function applyOnHost(ruleset: string): Promise<void> {
  await run('nft', ['-f', '-'], { input: ruleset })
}
