import { type Cidr4, cidrToString, type EgressPolicy, hasDomainRules } from '@warren/shared'
import type { SandboxTableSpec } from './nftables.js'
import { ALWAYS_DENIED_V4 } from './ranges.js'

/**
 * gVisor's own network stack takes the sandbox's address off eth0 and
 * sends and receives whole frames on it through a packet socket: its
 * packets never pass the namespace's IP hooks, so the sandbox table there
 * would judge nothing. They do pass the host's, arriving from the slot's
 * veth like any routed packet (prerouting, input or forward, postrouting),
 * so a gVisor sandbox's rules live in a table of its own in the host's
 * namespace, every rule keyed by its veth: the same sets and order as the
 * sandbox table (Warren's services, the always-denied ranges, allow before
 * deny) plus the two things the namespace did implicitly: the source must
 * be the sandbox's address, and the host answers it only on the gateway.
 */
export function gvisorTableName(prefix: string, index: number): string {
  return `warren_${prefix}_g${index}`
}

function elements(cidrs: Cidr4[]): string {
  return cidrs.length ? `elements = { ${cidrs.map(cidrToString).join(', ')} }` : ''
}

export function renderGvisorHostTable(
  spec: SandboxTableSpec & { table: string; hostIf: string },
): string {
  const deny = [...ALWAYS_DENIED_V4, spec.pool, ...spec.hostAddresses.map((a) => `${a}/32`)]
  const { dnsPort, egressHttpPort, egressTlsPort } = spec.services
  const gw = spec.hostIp
  const veth = `iifname "${spec.hostIf}"`
  const nat: string[] = []
  if (dnsPort)
    nat.push(
      `${veth} ip daddr ${gw} meta l4proto { tcp, udp } th dport 53 dnat ip to ${gw}:${dnsPort}`,
    )
  const egress: EgressPolicy | undefined = spec.egress
  if (egress && hasDomainRules(egress) && egressHttpPort && egressTlsPort) {
    const notAllowed = 'ip daddr != @always_denied ip daddr != @allow_out'
    nat.push(`${veth} tcp dport 80 ${notAllowed} dnat ip to ${gw}:${egressHttpPort}`)
    nat.push(`${veth} tcp dport 443 ${notAllowed} dnat ip to ${gw}:${egressTlsPort}`)
  }
  return `add table inet ${spec.table}
delete table inet ${spec.table}
table inet ${spec.table} {
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
  chain guard {
    type filter hook prerouting priority raw; policy accept;
    # Only the sandbox's own address, and no IPv6 (as the sandbox table refuses it).
    ${veth} ip saddr != ${spec.sandboxIp} drop
    ${veth} meta nfproto ipv6 drop
  }
  chain prerouting_nat {
    type nat hook prerouting priority dstnat; policy accept;
${nat.map((l) => `    ${l}`).join('\n')}
  }
  chain input {
    type filter hook input priority filter - 1; policy accept;
    # The host answers the sandbox only on its gateway (Warren's DNS and egress proxy;
    # the node table decides the ports).
    ${veth} ip daddr != ${gw} reject with icmpx admin-prohibited
  }
  chain forward {
    type filter hook forward priority filter - 1; policy accept;
    ${veth} ct state established,related accept
    ${veth} ip daddr @always_denied reject with icmpx admin-prohibited
    ${veth} ip daddr @allow_out accept
    # A TCP packet that opens nothing is a flow whose entry an update cut:
    # reset it, so the sandbox's socket fails now instead of retransmitting.
    ${veth} ip daddr @deny_out tcp flags ! syn reject with tcp reset
    ${veth} ip daddr @deny_out reject with icmpx admin-prohibited
  }
}
`
}

/**
 * The table of a gVisor sandbox's own namespace: its kernel stack holds no
 * address there and must answer nothing (a reset or an ICMP error from it
 * would race gVisor's answers), so every IP packet it sees is dropped.
 * gVisor's packet socket reads frames before these hooks and writes them
 * below them.
 */
export function renderGvisorNetnsTable(): string {
  return `add table inet sandbox
delete table inet sandbox
table inet sandbox {
  chain prerouting {
    type filter hook prerouting priority raw; policy drop;
  }
  chain output {
    type filter hook output priority raw; policy drop;
  }
}
`
}
