import type { EgressPolicy, NetworkPolicy } from '@warren/shared'

/**
 * The network policies in force on this node, by sandbox and by sandbox
 * address (Warren's DNS and egress proxy know their clients by address).
 * During an update a sandbox holds both the old and the new policy and a flow
 * must satisfy every one: the tighter of the two applies until the kernel
 * rules have switched, then only the new one.
 */
export class PolicyTable {
  private readonly byId = new Map<string, { ip: string | undefined; policies: NetworkPolicy[] }>()
  private readonly byIp = new Map<string, string>()
  private readonly listeners = new Set<(sandboxId: string) => void>()

  /** Told of each sandbox whose policy changed (the node proxy's workers cache verdicts). */
  onChange(fn: (sandboxId: string) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  set(sandboxId: string, ip: string | undefined, ...policies: NetworkPolicy[]): void {
    const old = this.byId.get(sandboxId)
    if (old?.ip) this.byIp.delete(old.ip)
    this.byId.set(sandboxId, { ip, policies })
    if (ip) this.byIp.set(ip, sandboxId)
    for (const fn of this.listeners) fn(sandboxId)
  }

  remove(sandboxId: string): void {
    const old = this.byId.get(sandboxId)
    if (old?.ip) this.byIp.delete(old.ip)
    this.byId.delete(sandboxId)
    for (const fn of this.listeners) fn(sandboxId)
  }

  /** The current (settled) policy of a sandbox. */
  get(sandboxId: string): NetworkPolicy | undefined {
    return this.byId.get(sandboxId)?.policies.at(-1)
  }

  /** Every egress policy a flow from this address must satisfy; undefined if no sandbox has it. */
  egressFor(ip: string): { sandboxId: string; egress: EgressPolicy[] } | undefined {
    const sandboxId = this.byIp.get(ip)
    const entry = sandboxId ? this.byId.get(sandboxId) : undefined
    if (!sandboxId || !entry) return undefined
    return { sandboxId, egress: entry.policies.map((p) => p.egress) }
  }
}
