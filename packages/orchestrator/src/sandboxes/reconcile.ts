import { existsSync, readdirSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import type { NodeContext } from '../context.js'
import { destroyNetns, listHostObjects, netnsNames, parseSlotIndex } from '../network/netns.js'
import type { NetworkSlot } from '../network/slots.js'
import { mountsUnder } from '../runtime/overlay.js'
import { destroySandbox } from './destroy.js'
import { readRecord, type SandboxRecord, sandboxPaths } from './record.js'

export interface Adopted {
  record: SandboxRecord
  slot: NetworkSlot
}

/**
 * Compares what the node remembers with what the host has, after a crash or a
 * restart. A sandbox whose container is alive (running or frozen), whose
 * namespace exists and whose root is mounted is adopted as it is; everything
 * else with this node's prefix is debris and is removed: containers, mounts,
 * sandbox directories, namespaces, veths, cgroups.
 */
export async function reconcile(
  ctx: NodeContext,
): Promise<{ adopted: Adopted[]; removed: string[] }> {
  const { cfg, log } = ctx
  const sandboxesDir = join(cfg.dataDir, 'sandboxes')
  const containers = new Map((await ctx.runc.list()).map((c) => [c.id, c]))
  const host = await listHostObjects(cfg.prefix)
  const adopted: Adopted[] = []
  const removed: string[] = []
  const keepSlots = new Set<number>()

  const ids = existsSync(sandboxesDir) ? readdirSync(sandboxesDir) : []
  for (const sandboxId of ids) {
    const record = readRecord(cfg.dataDir, sandboxId)
    const state = record && containers.get(record.containerId)
    const names = record && netnsNames(cfg.prefix, record.slotIndex)
    const healthy =
      record &&
      state &&
      (state.status === 'running' || state.status === 'paused') &&
      names &&
      host.netns.includes(names.netns) &&
      mountsUnder(sandboxPaths(cfg.dataDir, sandboxId).dir).includes(
        sandboxPaths(cfg.dataDir, sandboxId).rootfs,
      )
    if (record && healthy) {
      const slot = ctx.slots.adopt(record.slotIndex)
      keepSlots.add(record.slotIndex)
      adopted.push({
        record: { ...record, state: state.status === 'paused' ? 'paused' : 'running' },
        slot,
      })
      containers.delete(record.containerId)
      continue
    }
    log.warn(
      { sandboxId, hasRecord: !!record, container: state?.status },
      'removing sandbox debris',
    )
    const errors = await destroySandbox(ctx, sandboxId, undefined)
    for (const err of errors) log.error({ err, sandboxId }, 'debris removal step failed')
    if (record) containers.delete(record.containerId)
    removed.push(sandboxId)
  }

  // Containers of this node without a sandbox directory.
  for (const c of containers.values()) {
    if (!c.id.startsWith(`${cfg.prefix}-`)) continue
    log.warn({ container: c.id }, 'removing orphan container')
    await ctx.runc
      .destroy(c.id)
      .catch((err) => log.error({ err }, 'orphan container removal failed'))
    removed.push(c.id)
  }

  // Namespaces and veths of slots nobody owns (including the old warm ones).
  const stale = new Set<number>()
  for (const name of [...host.netns, ...host.links]) {
    const index = parseSlotIndex(cfg.prefix, name)
    if (index !== undefined && !keepSlots.has(index)) stale.add(index)
  }
  for (const index of stale) {
    await destroyNetns(netnsNames(cfg.prefix, index)).catch((err) =>
      log.error({ err }, 'netns removal failed'),
    )
  }

  removeStaleCgroups(cfg.prefix, new Set(adopted.map((a) => a.record.sandboxId)))
  return { adopted, removed }
}

/** Empty cgroup directories runc left behind (v1 controllers and v2). */
function removeStaleCgroups(prefix: string, keep: Set<string>): void {
  const roots = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? ['/sys/fs/cgroup']
    : readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c))
  for (const root of roots) {
    const dir = join(root, 'warren', prefix)
    if (!existsSync(dir)) continue
    for (const id of readdirSync(dir, { withFileTypes: true })) {
      if (id.isDirectory() && !keep.has(id.name)) {
        try {
          rmdirSync(join(dir, id.name))
        } catch {
          // Still has processes: a container runc no longer knows; left for the operator.
        }
      }
    }
  }
}
