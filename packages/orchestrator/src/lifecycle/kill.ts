import { WarrenError } from '@warren/shared'
import type { VolumeRegistry } from '../volumes/registry.js'
import { holdsMemory, type NodeState, type Settled } from './entries.js'

/**
 * Removes a sandbox in any state (under its lock): the host's every step
 * runs, the node forgets it and takes its memory back. Its volumes are let
 * go only when nothing failed: a container that may not be gone may still
 * hold them.
 */
export async function destroySandbox(
  node: NodeState,
  entry: Settled,
  volumes: VolumeRegistry,
): Promise<void> {
  const sandboxId = entry.record.sandboxId
  const errors = await node.host.destroy(sandboxId, entry.slot)
  node.forget(sandboxId)
  if (!errors.length) volumes.release(sandboxId, entry.record.volumeMounts)
  if (holdsMemory(entry.record)) node.releaseMemory(entry.record.memoryMb)
  if (errors.length) {
    for (const err of errors) node.log.error({ err, sandboxId }, 'kill step failed')
    throw new WarrenError('internal', `sandbox ${sandboxId} was not removed cleanly`)
  }
}
