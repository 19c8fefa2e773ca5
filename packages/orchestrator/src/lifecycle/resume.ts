import type { ResumeInput } from '../host/node-host.js'
import type { SandboxRecord } from '../sandboxes/record.js'
import { type NodeState, policyOf, type Settled, toFiles, withoutPause } from './entries.js'

/**
 * Resumes a paused sandbox (under its lock): thaws its frozen processes
 * (hot), or boots a fresh first process on its files (cold: files-only
 * snapshots, a forced reboot, frozen processes that died).
 */
export async function resumeSandbox(
  node: NodeState,
  paused: Settled,
  input: ResumeInput,
): Promise<{ record: SandboxRecord; kind: 'memory' | 'files' }> {
  const { host } = node
  const sandboxId = paused.record.sandboxId
  let entry = paused
  if (entry.record.pausedKind === 'memory' && input.memory !== false) {
    if (await host.thaw(entry.record)) {
      const running = withoutPause(entry.record)
      host.saveRecord(running)
      node.set(sandboxId, { state: 'running', record: running, slot: entry.slot })
      return { record: running, kind: 'memory' }
    }
    node.log.warn({ sandboxId }, 'frozen processes lost; resuming from the files')
  }
  if (entry.record.pausedKind === 'memory') {
    await toFiles(node, entry, entry.record.pausedAt ?? new Date().toISOString())
    entry = node.settled(sandboxId)
  }
  const record = await bootCold(node, entry.record, input)
  // A gVisor sandbox paused with its processes saved continues them.
  return { record, kind: record.restoredFrom === 'memory' ? 'memory' : 'files' }
}

/** A cold resume: the memory back from the node, then a boot on the kept layer. */
async function bootCold(
  node: NodeState,
  paused: SandboxRecord,
  input: ResumeInput,
): Promise<SandboxRecord> {
  const policy = policyOf(paused)
  node.reserveMemory(paused.memoryMb)
  try {
    // The files stay on failure: the sandbox is still a files-only snapshot.
    const { record, slot } = await node.host.bootFromFiles(paused, input, policy)
    node.host.policies.set(paused.sandboxId, slot.sandboxIp, policy)
    node.set(paused.sandboxId, { state: 'running', record, slot })
    return record
  } catch (err) {
    node.releaseMemory(paused.memoryMb)
    throw err
  }
}
