import { rmSync } from 'node:fs'
import { CleanupStack, type NetworkPolicy } from '@warren/shared'
import { containerId, type NodeContext } from '../context.js'
import type { Placed, ResumeInput } from '../host/node-host.js'
import type { NetworkSlot } from '../network/slots.js'
import { unmount } from '../runtime/overlay.js'
import { bootSandbox } from './boot.js'
import { asStartError, undo } from './create.js'
import { type SandboxRecord, sandboxPaths, writeRecord } from './record.js'

/**
 * Thaws a frozen container. False when its processes are gone (killed
 * behind the node's back): the snapshot is then only its files.
 */
export async function thaw(ctx: NodeContext, record: SandboxRecord): Promise<boolean> {
  try {
    await ctx.runtimes.get(record.isolation).resume(record.containerId)
    return true
  } catch (err) {
    const status = (await ctx.runtimes.get(record.isolation).state(record.containerId))?.status
    if (status === 'paused') throw err
    // Thawed by someone else: the processes are there all the same.
    return status === 'running'
  }
}

/**
 * Boots a fresh first process on a paused sandbox's kept writable layer,
 * with a new network slot. On failure everything but the layer is undone:
 * the sandbox is still a files-only snapshot.
 */
export async function bootFromFiles(
  ctx: NodeContext,
  paused: SandboxRecord,
  input: ResumeInput,
  policy: NetworkPolicy,
): Promise<Placed & { slot: NetworkSlot }> {
  const template = ctx.templates.build(paused.templateId, paused.buildId)
  const cleanup = new CleanupStack()
  try {
    // A files-only pause that could not unmount left its root mounted.
    const paths = sandboxPaths(ctx.cfg.dataDir, paused.sandboxId)
    await unmount(paths.rootfs)
    const slot = await ctx.slots.acquire()
    cleanup.push('network slot', () => ctx.slots.release(slot))
    const started = await bootSandbox(
      ctx,
      {
        sandboxId: paused.sandboxId,
        template,
        cpuCount: paused.cpuCount,
        memoryMb: paused.memoryMb,
        envVars: input.envVars ?? {},
        envdAccessToken: input.envdAccessToken,
        policy,
        volumeMounts: paused.volumeMounts,
        isolation: paused.isolation,
        ...(paused.checkpointed ? { memoryImage: paths.checkpoint } : {}),
      },
      slot,
      cleanup,
    )
    // Its saved processes run again (or could not): the image is spent.
    rmSync(paths.checkpoint, { recursive: true, force: true })
    // A fresh container goes by the sandbox's id, even if it was claimed warm.
    const {
      pausedKind: _k,
      pausedAt: _a,
      restoredFrom: _r,
      restoredAt: _t,
      hostName: _h,
      checkpointed: _c,
      ...rest
    } = paused
    const record: SandboxRecord = {
      ...rest,
      containerId: containerId(ctx.cfg, paused.sandboxId),
      state: 'running',
      slotIndex: slot.index,
      sandboxIp: slot.sandboxIp,
      hostIp: slot.hostIp,
      envdVersion: ctx.envd?.version ?? template.envdVersion,
      ...(started === 'memory' ? { restoredFrom: 'memory' as const } : {}),
    }
    writeRecord(ctx.cfg.dataDir, record)
    cleanup.release()
    return { record, slot }
  } catch (err) {
    await undo(ctx, cleanup, paused.sandboxId)
    throw asStartError(err)
  }
}
