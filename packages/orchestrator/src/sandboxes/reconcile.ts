import { existsSync, readdirSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import type { NodeContext } from '../context.js'
import { destroyNetns, listHostObjects, netnsNames, parseSlotIndex } from '../network/netns.js'
import type { NetworkSlot } from '../network/slots.js'
import type { ContainerState, OciRuntime } from '../runtime/oci-runtime.js'
import { mountsUnder } from '../runtime/overlay.js'
import { isTearingDown } from './cut-off.js'
import { destroySandbox } from './destroy.js'
import { CGROUP_V2 } from './metrics.js'
import { dropToFiles } from './pause.js'
import { readRecord, type SandboxRecord, sandboxPaths, writeRecord } from './record.js'

export interface Adopted {
  record: SandboxRecord
  /** Undefined for a sandbox paused to files only. */
  slot: NetworkSlot | undefined
  /** Its container had stopped: what the node saw. */
  exited?: string
}

/**
 * Compares what the node remembers with what the host has, after a crash or a
 * restart. A sandbox whose container is in its recorded state (running, or
 * frozen when paused with memory), whose namespace exists and whose root is
 * mounted is adopted as it is; one whose container stopped meanwhile is
 * adopted as exited (the control plane then kills it, reason `exited`). A
 * paused sandbox whose processes are gone keeps
 * its files and becomes a files-only snapshot. Everything else with this
 * node's prefix is debris and is removed: containers, mounts, sandbox
 * directories, namespaces, veths, cgroups. So is a sandbox marked as
 * tearing down, whatever its state: its kill was answered before the node
 * stopped.
 */
export async function reconcile(
  ctx: NodeContext,
): Promise<{ adopted: Adopted[]; removed: string[] }> {
  const { cfg, log } = ctx
  const sandboxesDir = join(cfg.dataDir, 'sandboxes')
  const containers = new Map<string, ContainerState & { runtime: OciRuntime }>()
  for (const runtime of ctx.runtimes.all())
    for (const c of await runtime.list()) containers.set(c.id, { ...c, runtime })
  const host = await listHostObjects(cfg.prefix)
  const adopted: Adopted[] = []
  const removed: string[] = []
  const keepSlots = new Set<number>()
  const mounted = new Set(mountsUnder(sandboxesDir))

  const ids = existsSync(sandboxesDir) ? readdirSync(sandboxesDir) : []
  for (const sandboxId of ids) {
    const record = readRecord(cfg.dataDir, sandboxId)
    const state = record && containers.get(record.containerId)
    if (record) containers.delete(record.containerId)
    const paths = sandboxPaths(cfg.dataDir, sandboxId)
    // Killed (the caller was answered) before its teardown finished: finish it.
    const killed = isTearingDown(cfg.dataDir, sandboxId)
    const intact =
      !killed &&
      !!record &&
      record.slotIndex !== null &&
      host.netns.includes(netnsNames(cfg.prefix, record.slotIndex).netns) &&
      mounted.has(paths.rootfs)
    if (record && intact && record.slotIndex !== null) {
      const wanted =
        record.state === 'paused' && record.pausedKind === 'memory' ? 'paused' : 'running'
      // A crash between the freezer and the record leaves them disagreeing:
      // the record wins (thaw or freeze again).
      const id = record.containerId
      let status = state?.runtime.isolation === record.isolation ? state.status : undefined
      const runtime = ctx.runtimes.all().find((r) => r.isolation === record.isolation)
      if (runtime && status !== wanted && (status === 'paused' || status === 'running')) {
        await (wanted === 'running' ? runtime.resume(id) : runtime.pause(id)).catch(() => {})
        status = (await runtime.state(id))?.status
      }
      if (status === wanted) {
        keepSlots.add(record.slotIndex)
        const slot = ctx.slots.adopt(record.slotIndex)
        if (record.isolation === 'gvisor') ctx.gvisorNetwork.adopt(slot)
        adopted.push({ record, slot })
        continue
      }
      if (wanted === 'running' && status === 'stopped') {
        // Its container died while the node was away: adopted as exited, so
        // the control plane hears why, rather than finding it simply gone.
        keepSlots.add(record.slotIndex)
        adopted.push({
          record,
          slot: ctx.slots.adopt(record.slotIndex),
          exited: "the sandbox's first process exited while its node was down",
        })
        continue
      }
    }
    if (!killed && record?.state === 'paused') {
      // A paused sandbox's writable layer is its snapshot: whatever happened
      // to its processes, the files stay and it can be resumed cold.
      if (record.pausedKind !== 'files')
        log.warn({ sandboxId }, 'frozen processes lost; keeping the files')
      await dropToFiles(ctx, sandboxId, undefined).catch((err) =>
        log.error({ err, sandboxId }, 'cleanup failed'),
      )
      const files: SandboxRecord = {
        ...record,
        pausedKind: 'files',
        slotIndex: null,
        sandboxIp: null,
        hostIp: null,
      }
      writeRecord(cfg.dataDir, files)
      adopted.push({ record: files, slot: undefined })
      continue
    }
    log.warn(
      { sandboxId, hasRecord: !!record, container: state?.status, killed },
      killed ? 'finishing the teardown of a killed sandbox' : 'removing sandbox debris',
    )
    const errors = await destroySandbox(ctx, sandboxId, undefined)
    for (const err of errors) log.error({ err, sandboxId }, 'debris removal step failed')
    removed.push(sandboxId)
  }

  // Containers of this node without a sandbox directory.
  for (const c of containers.values()) {
    if (!c.id.startsWith(`${cfg.prefix}-`)) continue
    log.warn({ container: c.id }, 'removing orphan container')
    await c.runtime
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

  await ctx.gvisorNetwork
    .removeStale(keepSlots)
    .catch((err) => log.error({ err }, 'gVisor rule removal failed'))
  removeStaleCgroups(
    cfg.prefix,
    new Set(adopted.map((a) => a.record.hostName ?? a.record.sandboxId)),
  )
  return { adopted, removed }
}

/** Empty cgroup directories runc left behind (v1 controllers and v2). */
function removeStaleCgroups(prefix: string, keep: Set<string>): void {
  const roots = CGROUP_V2
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
