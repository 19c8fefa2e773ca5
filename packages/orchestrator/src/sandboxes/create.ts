import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { CleanupStack, WarrenError } from '@warren/shared'
import { containerId, type NodeContext } from '../context.js'
import type { CreateSpec } from '../host/node-host.js'
import type { NetworkSlot } from '../network/slots.js'
import { createDiskImage, freeMb, mountDisk } from '../runtime/disk.js'
import { unmount } from '../runtime/overlay.js'
import { buildDir } from '../templates/store.js'
import { bootSandbox, createUpper } from './boot.js'
import { removeSandboxDir } from './destroy.js'
import { type SandboxRecord, sandboxPaths, writeRecord } from './record.js'

/**
 * Starts one sandbox: network slot, writable layer, then the boot. Every
 * acquisition registers its undo; any failure undoes everything in reverse
 * and rethrows.
 */
export async function createSandbox(
  ctx: NodeContext,
  spec: CreateSpec,
  opts: { warm?: boolean } = {},
): Promise<{ record: SandboxRecord; slot: NetworkSlot }> {
  const { cfg } = ctx
  const paths = sandboxPaths(cfg.dataDir, spec.sandboxId)
  const free = freeMb(cfg.dataDir)
  if (free < cfg.diskReserveMb) {
    throw new WarrenError(
      'capacity_exhausted',
      `this node's data disk is full: ${free} MB free, ${cfg.diskReserveMb} MB kept in reserve`,
    )
  }
  const cleanup = new CleanupStack()
  try {
    const slot = await ctx.slots.acquire()
    cleanup.push('network slot', () => ctx.slots.release(slot))
    // Traversable (not listable) by the sandbox's mapped root, which runc uses to reach the rootfs.
    mkdirSync(paths.dir, { recursive: true, mode: 0o711 })
    cleanup.push('sandbox directory', () => removeSandboxDir(paths.dir))
    await createDiskImage(
      paths.image,
      spec.diskSizeMb,
      Math.max(1024, spec.diskSizeMb * cfg.diskInodesPerMb),
    )
    mkdirSync(paths.disk)
    await mountDisk(paths.image, paths.disk)
    cleanup.push('disk', () => unmount(paths.disk))
    createUpper(paths.upper, spec.template.uidBase)
    const { memoryImage } = spec.template
    const started = await bootSandbox(
      ctx,
      {
        ...spec,
        warm: opts.warm,
        ...(memoryImage
          ? {
              memoryImage: join(
                buildDir(ctx.templatesDir, spec.template.templateId, spec.template.buildId),
                memoryImage,
              ),
            }
          : {}),
      },
      slot,
      cleanup,
    )

    const record = newRecord(ctx, spec, slot, spec.sandboxId)
    if (started === 'memory') record.restoredFrom = 'memory'
    // A warm sandbox has no record: a node start removes it as debris.
    if (!opts.warm) writeRecord(cfg.dataDir, record)
    cleanup.release()
    return { record, slot }
  } catch (err) {
    await undo(ctx, cleanup, spec.sandboxId)
    throw asStartError(err)
  }
}

/** The record of a sandbox just started (or claimed warm) at this slot. */
export function newRecord(
  ctx: NodeContext,
  spec: CreateSpec,
  slot: NetworkSlot,
  hostName: string,
): SandboxRecord {
  return {
    sandboxId: spec.sandboxId,
    templateId: spec.template.templateId,
    buildId: spec.template.buildId,
    containerId: containerId(ctx.cfg, hostName),
    ...(hostName !== spec.sandboxId ? { hostName } : {}),
    slotIndex: slot.index,
    sandboxIp: slot.sandboxIp,
    hostIp: slot.hostIp,
    cpuCount: spec.cpuCount,
    memoryMb: spec.memoryMb,
    diskSizeMb: spec.diskSizeMb,
    startedAt: new Date().toISOString(),
    envdVersion: ctx.envd?.version ?? spec.template.envdVersion,
    state: 'running',
    network: { ...spec.network },
    allowInternetAccess: spec.allowInternetAccess,
    ...(spec.trafficAccessToken ? { trafficAccessToken: spec.trafficAccessToken } : {}),
    volumeMounts: spec.volumeMounts,
    isolation: spec.isolation,
  }
}

export async function undo(
  ctx: NodeContext,
  cleanup: CleanupStack,
  sandboxId: string,
): Promise<void> {
  for (const e of await cleanup.run()) ctx.log.error({ err: e, sandboxId }, 'rollback step failed')
}

export function asStartError(err: unknown): WarrenError {
  if (err instanceof WarrenError) return err
  return new WarrenError('internal', `could not start sandbox: ${(err as Error).message}`, {
    cause: err,
  })
}
