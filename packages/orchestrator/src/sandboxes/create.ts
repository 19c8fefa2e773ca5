import { chownSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CleanupStack, WarrenError } from '@warren/shared'
import { cgroupsPath, containerId, type NodeContext } from '../context.js'
import type { NetworkSlot } from '../network/slots.js'
import { mountOverlay, unmount } from '../runtime/overlay.js'
import { hostMaxOpenFiles, sandboxSpec } from '../runtime/spec.js'
import type { TemplateMetadata } from '../templates/metadata.js'
import { rootfsDir } from '../templates/store.js'
import { initEnvd, waitForPort } from './readiness.js'
import { type SandboxRecord, sandboxPaths, writeRecord } from './record.js'

export interface CreateSpec {
  sandboxId: string
  template: TemplateMetadata
  cpuCount: number
  memoryMb: number
  diskSizeMb: number
  envVars: Record<string, string>
  envdAccessToken: string | undefined
}

const READY_TIMEOUT_MS = 30_000

/**
 * Starts one sandbox: network slot, writable layer, overlay root, runc
 * container, then waits for its first process. Every acquisition registers
 * its undo; any failure undoes everything in reverse and rethrows.
 */
export async function createSandbox(
  ctx: NodeContext,
  spec: CreateSpec,
): Promise<{ record: SandboxRecord; slot: NetworkSlot }> {
  const { cfg } = ctx
  const paths = sandboxPaths(cfg.dataDir, spec.sandboxId)
  const id = containerId(cfg, spec.sandboxId)
  const cleanup = new CleanupStack()
  try {
    const slot = await ctx.slots.acquire()
    cleanup.push('network slot', () => ctx.slots.release(slot))

    // Traversable (not listable) by the sandbox's mapped root, which runc uses to reach the rootfs.
    mkdirSync(paths.dir, { recursive: true, mode: 0o711 })
    cleanup.push('sandbox directory', () => rmSync(paths.dir, { recursive: true, force: true }))
    const lower = rootfsDir(ctx.templatesDir, spec.template)
    prepareUpper(paths.upper, lower, spec.template.uidBase, spec.sandboxId, slot)
    mkdirSync(paths.work)
    mkdirSync(paths.rootfs)
    await mountOverlay({ lower, upper: paths.upper, work: paths.work, target: paths.rootfs })
    cleanup.push('root filesystem', () => unmount(paths.rootfs))

    writeFileSync(
      join(paths.bundle, 'config.json'),
      JSON.stringify(bundleSpec(ctx, spec, paths.rootfs, slot)),
    )
    await ctx.runc.runDetached(id, paths.bundle, paths.log)
    cleanup.push('container', () => ctx.runc.destroy(id))

    await waitForPort(slot.sandboxIp, cfg.readyPort, {
      timeoutMs: READY_TIMEOUT_MS,
      alive: async () => (await ctx.runc.state(id))?.status === 'running',
    })
    if (ctx.envd) {
      await initEnvd(slot.sandboxIp, cfg.readyPort, {
        ...(spec.envdAccessToken ? { accessToken: spec.envdAccessToken } : {}),
        envVars: { ...spec.envVars, E2B_SANDBOX: 'true', E2B_SANDBOX_ID: spec.sandboxId },
        defaultUser: spec.template.defaultUser,
        defaultWorkdir: spec.template.defaultWorkdir,
      })
    }

    const record: SandboxRecord = {
      sandboxId: spec.sandboxId,
      templateId: spec.template.templateId,
      buildId: spec.template.buildId,
      containerId: id,
      slotIndex: slot.index,
      sandboxIp: slot.sandboxIp,
      hostIp: slot.hostIp,
      cpuCount: spec.cpuCount,
      memoryMb: spec.memoryMb,
      diskSizeMb: spec.diskSizeMb,
      startedAt: new Date().toISOString(),
      envdVersion: ctx.envd?.version ?? spec.template.envdVersion,
      state: 'running',
    }
    writeRecord(cfg.dataDir, record)
    cleanup.release()
    return { record, slot }
  } catch (err) {
    const undoErrors = await cleanup.run()
    for (const e of undoErrors)
      ctx.log.error({ err: e, sandboxId: spec.sandboxId }, 'rollback step failed')
    if (err instanceof WarrenError) throw err
    throw new WarrenError('internal', `could not start sandbox: ${(err as Error).message}`, {
      cause: err,
    })
  }
}

/**
 * The writable layer starts with the files that name this sandbox. /etc in
 * the layer copies the template's owner and mode so the merged view does not
 * change them.
 */
function prepareUpper(
  upper: string,
  lower: string,
  uidBase: number,
  sandboxId: string,
  slot: NetworkSlot,
): void {
  mkdirSync(upper)
  chownSync(upper, uidBase, uidBase)
  const etc = join(upper, 'etc')
  const lowerEtc = statSync(join(lower, 'etc'))
  mkdirSync(etc, { mode: lowerEtc.mode & 0o7777 })
  chownSync(etc, lowerEtc.uid, lowerEtc.gid)
  const files: Record<string, string> = {
    hostname: `${sandboxId}\n`,
    hosts: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${slot.sandboxIp}\t${sandboxId}\n`,
    'resolv.conf': `nameserver ${slot.hostIp}\noptions edns0\n`,
  }
  for (const [name, content] of Object.entries(files)) {
    const path = join(etc, name)
    writeFileSync(path, content, { mode: 0o644 })
    chownSync(path, uidBase, uidBase)
  }
}

function bundleSpec(ctx: NodeContext, spec: CreateSpec, rootfs: string, slot: NetworkSlot): object {
  const { cfg } = ctx
  // tini is process 1: it reaps orphans, which Node (envd) cannot do.
  const args = [
    '/opt/warren/bin/tini',
    '--',
    ...(cfg.sandboxCommand ?? ['/opt/warren/bin/node', '/opt/warren/envd/envd.mjs']),
  ]
  const mounts = [
    { source: cfg.initPath, destination: '/opt/warren/bin/tini' },
    { source: cfg.nodePath, destination: '/opt/warren/bin/node' },
  ]
  if (ctx.envd) mounts.push({ source: ctx.envd.dir, destination: '/opt/warren/envd' })
  return sandboxSpec({
    hostname: spec.sandboxId,
    args,
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'],
    rootfs,
    netnsPath: `/run/netns/${slot.netns}`,
    cgroupsPath: cgroupsPath(cfg, spec.sandboxId),
    uidBase: spec.template.uidBase,
    memoryMb: spec.memoryMb,
    cpuCount: spec.cpuCount,
    pidsLimit: spec.template.pidsLimit,
    noNewPrivileges: spec.template.noNewPrivileges,
    maxOpenFiles: hostMaxOpenFiles(),
    readonlyMounts: mounts,
  })
}
