import {
  type Cidr4,
  cidrContains,
  type EgressPolicy,
  ipv4ToInt,
  type Logger,
  nativeCarry,
  type OrchestratorConfig,
  parseCidr4,
} from '@warren/shared'
import type { AddressSlot } from './address-pool.js'
import { DnsServer } from './dns/server.js'
import { parseUpstreams, Upstream } from './dns/upstream.js'
import { EgressProxy } from './egress/proxy.js'
import { renderSandboxTable, type SandboxTableSpec } from './nftables.js'
import { PolicyTable } from './policies.js'

/**
 * The node's network services for its sandboxes: the policy table, Warren's
 * DNS and the egress proxy (both on the host end of every veth), and the
 * rendering of each sandbox's nftables table.
 */
export class NodeNetwork {
  readonly policies = new PolicyTable()
  readonly hostAddresses: string[] = []
  private readonly upstream: Upstream
  private dns: DnsServer | undefined
  private egress: EgressProxy | undefined

  constructor(
    private readonly cfg: OrchestratorConfig,
    private readonly log: Logger,
  ) {
    this.upstream = new Upstream(parseUpstreams(cfg.dnsUpstreams))
  }

  get servicePorts(): number[] {
    return [this.cfg.dnsPort, this.cfg.egressHttpPort, this.cfg.egressTlsPort]
  }

  tableFor = (slot: AddressSlot, egress?: EgressPolicy): string =>
    renderSandboxTable(this.tableSpec(slot, egress))

  /** What a sandbox's rules are made of: its addresses, the host's, the pool, Warren's ports. */
  tableSpec = (slot: AddressSlot, egress?: EgressPolicy): SandboxTableSpec => ({
    hostIp: slot.hostIp,
    sandboxIp: slot.sandboxIp,
    hostAddresses: this.hostAddresses,
    pool: this.cfg.addressPool,
    services: {
      dnsPort: this.cfg.dnsPort,
      egressHttpPort: this.cfg.egressHttpPort,
      egressTlsPort: this.cfg.egressTlsPort,
    },
    egress,
  })

  /** Learns the host's addresses and starts listening (DNS, egress proxy). */
  async start(hostAddresses: string[]): Promise<void> {
    const pool = parseCidr4(this.cfg.addressPool)
    this.hostAddresses.push(...hostAddresses.filter((a) => !cidrContains(pool, ipv4ToInt(a))))
    const extra: Cidr4[] = [pool, ...this.hostAddresses.map((a) => parseCidr4(a))]
    const dns = new DnsServer({
      port: this.cfg.dnsPort,
      upstream: this.upstream,
      policyFor: (ip) => this.policies.egressFor(ip)?.egress,
      log: this.log,
    })
    await dns.listen()
    this.dns = dns
    const egress = new EgressProxy({
      httpPort: this.cfg.egressHttpPort,
      tlsPort: this.cfg.egressTlsPort,
      upstream: this.upstream,
      sourceFor: (ip) => this.policies.egressFor(ip),
      extraDenied: extra,
      log: this.log,
      carry: this.kernelCarry(),
    })
    await egress.listen()
    this.egress = egress
  }

  private kernelCarry() {
    if (!this.cfg.egressKernelCarry) return undefined
    const carry = nativeCarry()
    if (!carry)
      this.log.warn(
        'the kernel carry is not built (packages/shared/native): egress HTTP bodies are copied in JavaScript',
      )
    return carry
  }

  async stop(): Promise<void> {
    await this.dns?.close()
    await this.egress?.close()
    this.dns = undefined
    this.egress = undefined
  }

  /** Cuts proxied connections the sandbox's current policy no longer allows. */
  enforce(sandboxId: string): number {
    return this.egress?.enforce(sandboxId, this.policies.get(sandboxId)?.egress) ?? 0
  }
}
