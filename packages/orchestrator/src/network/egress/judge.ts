import { isIP } from 'node:net'
import {
  type Cidr4,
  cidrContains,
  domainAllowed,
  type EgressPolicy,
  egressAllowsIp,
  ipv4ToInt,
} from '@warren/shared'
import type { Upstream } from '../dns/upstream.js'
import { alwaysDenied } from '../ranges.js'

export type Verdict =
  | { ok: true; address: string }
  | { ok: false; status: 403 | 502; message: string }

/**
 * The egress proxy's decisions for one name under every policy a sandbox is
 * bound by (two during a rule update): the name must be allowed, and it is
 * dialled at an address the rules let through.
 */
export class EgressJudge {
  constructor(
    private readonly upstream: Upstream,
    /** Ranges beyond the always-denied ones: the address pool, this host. */
    private readonly extraDenied: Cidr4[],
  ) {}

  async judge(policies: EgressPolicy[], name: string | null): Promise<Verdict> {
    // An address in place of a name is judged by the address rules alone, and
    // those did not let it through (or it would not have come here).
    if (name && isIP(name)) {
      return {
        ok: false,
        status: 403,
        message: `egress to ${name} is not allowed by this sandbox's address rules`,
      }
    }
    if (!name || !policies.every((p) => domainAllowed(p.domains, name))) {
      return {
        ok: false,
        status: 403,
        message: `egress to '${name ?? '(no name)'}' is not allowed by this sandbox's network rules`,
      }
    }
    let addresses: string[]
    try {
      addresses = await this.upstream.resolve4(name)
    } catch {
      return { ok: false, status: 502, message: `'${name}' could not be resolved` }
    }
    const address = addresses.find((a) => policies.every((p) => this.reachable(p, a)))
    if (address) return { ok: true, address }
    return addresses.length
      ? { ok: false, status: 403, message: `'${name}' resolves only to denied addresses` }
      : { ok: false, status: 502, message: `'${name}' does not resolve` }
  }

  /**
   * Whether a proxied connection may go on under a sandbox's new policy: its
   * name is allowed and its address reachable (what a new connection would
   * get), or its address is allowed as such (a new connection there would go
   * out directly). A loosening never cuts; no policy (the sandbox is gone)
   * keeps nothing.
   */
  mayContinue(policy: EgressPolicy | undefined, name: string, address: string): boolean {
    if (!policy || alwaysDenied(address, this.extraDenied)) return false
    if (domainAllowed(policy.domains, name) && notDenied(policy, address)) return true
    return egressAllowsIp(policy, address)
  }

  /**
   * A resolved address may be used unless it is always denied, or an explicit
   * deny rule (not the catch-all 0.0.0.0/0 that domain rules require) names it
   * without an allow rule.
   */
  private reachable(policy: EgressPolicy, ip: string): boolean {
    return !alwaysDenied(ip, this.extraDenied) && notDenied(policy, ip)
  }
}

function notDenied(policy: EgressPolicy, ip: string): boolean {
  const n = ipv4ToInt(ip)
  if (policy.allow.some((c) => cidrContains(c, n))) return true
  return !policy.deny.some((c) => c.bits > 0 && cidrContains(c, n))
}
