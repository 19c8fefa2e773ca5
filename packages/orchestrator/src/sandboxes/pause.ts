import { containerId, type NodeContext } from '../context.js'
import { run } from '../exec.js'
import type { NetworkSlot } from '../network/slots.js'
import { unmountAll } from '../runtime/overlay.js'
import { checkpointFrozen } from './checkpoint.js'
import { hostNameOf, recordedIsolation, type SandboxRecord, sandboxPaths } from './record.js'

/**
 * Freezes every process of the sandbox (cgroup freezer) and flushes its
 * writable layer to disk, so the layer is a durable snapshot even if the
 * frozen processes are later lost.
 */
export async function freeze(ctx: NodeContext, sandboxId: string): Promise<void> {
  const runtime = ctx.runtimes.get(recordedIsolation(ctx.cfg.dataDir, sandboxId))
  const id = containerId(ctx.cfg, hostNameOf(ctx.cfg.dataDir, sandboxId))
  await runtime.pause(id)
  try {
    await syncLayer(ctx, sandboxId)
  } catch (err) {
    await runtime.resume(id).catch(() => {})
    throw err
  }
}

export async function syncLayer(ctx: NodeContext, sandboxId: string): Promise<void> {
  await run('sync', ['--file-system', sandboxPaths(ctx.cfg.dataDir, sandboxId).disk])
}

/**
 * Drops a sandbox's processes and network but keeps its writable layer: what
 * a files-only pause leaves, and what a frozen sandbox becomes when the node
 * needs its memory back. Idempotent. Throws only if the container could not
 * be removed (then nothing changed); a mount or namespace that will not go
 * is logged and left to the next boot, destroy or node start, which remove it.
 */
export async function dropToFiles(
  ctx: NodeContext,
  sandboxId: string,
  slot: NetworkSlot | undefined,
  saveProcesses?: SandboxRecord,
): Promise<boolean> {
  const paths = sandboxPaths(ctx.cfg.dataDir, sandboxId)
  const saved =
    saveProcesses?.isolation === 'gvisor' &&
    ctx.cfg.gvisorMemorySnapshots === 'on' &&
    (await checkpointFrozen(ctx, saveProcesses))
  const runtime = ctx.runtimes.get(recordedIsolation(ctx.cfg.dataDir, sandboxId))
  await runtime.destroy(containerId(ctx.cfg, hostNameOf(ctx.cfg.dataDir, sandboxId)))
  try {
    await unmountAll(paths.dir)
  } catch (err) {
    ctx.log.warn({ err, sandboxId }, 'could not unmount a dropped sandbox; retried later')
  }
  if (slot)
    await ctx.gvisorNetwork
      .detach(slot)
      .then(() => ctx.slots.release(slot))
      .catch((err) => ctx.log.warn({ err, sandboxId }, 'could not remove a dropped network'))
  return saved
}
