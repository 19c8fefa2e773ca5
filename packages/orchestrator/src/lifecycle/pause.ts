import { WarrenError } from '@warren/shared'
import type { SandboxRecord } from '../sandboxes/record.js'
import { type NodeState, type Settled, toFiles } from './entries.js'

/**
 * Pauses a running sandbox (under its lock): its processes are frozen and
 * its writable layer flushed to disk. Without `memory` the processes are
 * then dropped and only the files are kept; the memory and network go back
 * to the node.
 */
export async function pauseSandbox(
  node: NodeState,
  entry: Settled,
  memory: boolean,
): Promise<SandboxRecord> {
  const { host, log } = node
  const sandboxId = entry.record.sandboxId
  if (entry.state !== 'running')
    throw new WarrenError('conflict', `sandbox ${sandboxId} is ${entry.state}`)
  await host.freeze(sandboxId)
  const pausedAt = new Date().toISOString()
  if (!memory) {
    try {
      return await toFiles(node, entry, pausedAt)
    } catch (err) {
      // The container is still there, frozen. Thawed, it is the running
      // sandbox the caller goes on believing in; if it cannot be thawed, it
      // is paused with its memory, and that is what we report.
      const thawed = await host.thaw(entry.record).then(
        (alive) => alive,
        () => undefined,
      )
      if (thawed !== undefined) throw err
      log.error({ err, sandboxId }, 'files-only pause failed; the sandbox stays frozen')
    }
  }
  const paused: SandboxRecord = { ...entry.record, state: 'paused', pausedKind: 'memory', pausedAt }
  host.saveRecord(paused)
  node.set(sandboxId, {
    state: 'paused',
    record: paused,
    slot: entry.slot,
    frozenBytes: host.memoryInUse(sandboxId),
  })
  return paused
}
