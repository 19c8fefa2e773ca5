import type { CleanupStack, EgressPolicy } from '@warren/shared'
import { run } from '../exec.js'
import { gvisorTableName, renderGvisorHostTable, renderGvisorNetnsTable } from './gvisor-tables.js'
import type { LinkGso } from './link-gso.js'
import { applyInNetns, applyOnHost, type SandboxTableSpec } from './nftables.js'
import type { NetworkSlot } from './slots.js'

/**
 * The network rules of gVisor sandboxes, which live on the host side of
 * their veth (gvisor-tables.ts says why). Knows which slots are gVisor's, so
 * that rule updates, flow cuts and removal go where that sandbox's packets
 * pass.
 */
export class GvisorNetwork {
  private readonly slots = new Set<number>()

  constructor(
    private readonly prefix: string,
    /** The sandbox table's inputs for a slot (host addresses, pool, service ports). */
    private readonly specFor: (slot: NetworkSlot, egress?: EgressPolicy) => SandboxTableSpec,
    private readonly linkGso: LinkGso,
  ) {}

  has(slot: NetworkSlot): boolean {
    return this.slots.has(slot.index)
  }

  /** Before the sandbox's first packet: its namespace goes quiet, its host table takes over. */
  async attach(
    slot: NetworkSlot,
    egress: EgressPolicy | undefined,
    cleanup: CleanupStack,
  ): Promise<void> {
    this.slots.add(slot.index)
    cleanup.push('gVisor network rules', () => this.detach(slot))
    // gVisor reads whole frames off its veth: packets past 64 KiB crawl.
    if (slot.gsoMaxSize) {
      await this.linkGso.lower(slot)
      slot.gsoMaxSize = undefined
    }
    await applyInNetns(slot.netns, renderGvisorNetnsTable())
    await this.apply(slot, egress)
  }

  /** A sandbox adopted at node start: its rules are loaded again by the node's adoption. */
  adopt(slot: NetworkSlot): void {
    this.slots.add(slot.index)
  }

  /** Replaces the sandbox's rules in one nft transaction (the old ones stay on failure). */
  async apply(slot: NetworkSlot, egress: EgressPolicy | undefined): Promise<void> {
    await applyOnHost(
      renderGvisorHostTable({
        ...this.specFor(slot, egress),
        table: gvisorTableName(this.prefix, slot.index),
        hostIf: slot.hostIf,
      }),
    )
  }

  /** Removes the sandbox's host table; idempotent. */
  async detach(slot: NetworkSlot): Promise<void> {
    await deleteTable(gvisorTableName(this.prefix, slot.index))
    this.slots.delete(slot.index)
  }

  /** Host tables of this node's gVisor slots that no adopted sandbox holds (debris). */
  async removeStale(keep: Set<number>): Promise<void> {
    const out = await run('nft', ['-j', 'list', 'tables'])
    const re = new RegExp(`^warren_${this.prefix}_g(\\d+)$`)
    const tables = (JSON.parse(out) as { nftables: Array<{ table?: { name: string } }> }).nftables
    for (const t of tables) {
      const m = t.table && re.exec(t.table.name)
      if (m && !keep.has(Number(m[1]))) await deleteTable(t.table!.name)
    }
  }
}

async function deleteTable(name: string): Promise<void> {
  await run('nft', ['delete', 'table', 'inet', name], { okCodes: [1] })
}
