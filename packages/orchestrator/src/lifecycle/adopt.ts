import type { Placed } from '../host/node-host.js'
import { holdsMemory, type NodeState, policyOf } from './entries.js'

/**
 * Takes into the node the sandboxes its host kept across a restart: their
 * rules loaded again into their namespaces (a crash in the middle of an
 * update may have left the kernel with other rules than the record), their
 * policies, entries and memory.
 */
export async function adoptSandboxes(
  node: NodeState,
  adopted: Placed[],
  holdMemory: (memoryMb: number) => void,
): Promise<void> {
  const { host } = node
  for (const { record, slot, exited } of adopted) {
    const frozenBytes =
      record.pausedKind === 'memory' ? host.memoryInUse(record.sandboxId) : undefined
    const policy = policyOf(record)
    if (slot) await host.applyEgress(slot, policy.egress)
    host.policies.set(record.sandboxId, record.sandboxIp ?? undefined, policy)
    node.set(record.sandboxId, {
      state: record.state,
      record,
      slot,
      ...(frozenBytes ? { frozenBytes } : {}),
      // Its container died while the node was away: reported like a live exit.
      ...(exited ? { exited: { at: new Date().toISOString(), detail: exited } } : {}),
    })
    if (holdsMemory(record)) holdMemory(record.memoryMb)
  }
}
