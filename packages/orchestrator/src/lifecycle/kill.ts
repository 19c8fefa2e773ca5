import { WarrenError } from '@warren/shared'
import type { VolumeRegistry } from '../volumes/registry.js'
import { holdsMemory, type NodeState, type Settled } from './entries.js'
import type { Teardowns } from './teardowns.js'

/**
 * Kills a sandbox in any state (under its lock). Once the host has cut it
 * off — marked as tearing down, every process dead, no longer served — the
 * node forgets it and takes its memory and volumes back, and the rest of the teardown
 * (container, mounts, network, files) runs in the background: the caller's
 * answer does not wait for it. When the host cannot cut it off (gVisor), the
 * whole teardown runs before the answer, as `destroySandbox`.
 */
export async function killSandbox(
  node: NodeState,
  entry: Settled,
  volumes: VolumeRegistry,
  teardowns: Teardowns,
): Promise<void> {
  const { record, slot } = entry
  const sandboxId = record.sandboxId
  let cut = false
  try {
    cut = await node.host.cutOff(record)
  } catch (err) {
    node.log.warn({ err, sandboxId }, 'fast kill failed; tearing down while the caller waits')
  }
  if (!cut) return destroySandbox(node, entry, volumes)
  node.forget(sandboxId)
  if (holdsMemory(record)) node.releaseMemory(record.memoryMb)
  // Its volumes were bind-mounted in the container's mount namespace, which
  // ended with its last process: they are free now (a delete may follow).
  volumes.release(sandboxId, record.volumeMounts)
  teardowns.add(record, async () => {
    const errors = await node.host.destroy(sandboxId, slot)
    for (const err of errors) node.log.error({ err, sandboxId }, 'teardown step failed')
  })
}

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
