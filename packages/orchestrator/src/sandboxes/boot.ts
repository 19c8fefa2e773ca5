import {
  chownSync,
  closeSync,
  constants,
  existsSync,
  fchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join, relative } from 'node:path'
import {
  type CleanupStack,
  type EgressPolicy,
  hasEgressRules,
  type Isolation,
  type NetworkPolicy,
} from '@warren/shared'
import { cgroupsPath, containerId, type NodeContext } from '../context.js'
import { applyInNetns } from '../network/nftables.js'
import type { NetworkSlot } from '../network/slots.js'
import { mountDisk } from '../runtime/disk.js'
import { prepareGvisorRoot } from '../runtime/gvisor-spec.js'
import { mountOverlay, mountsUnder, unmount } from '../runtime/overlay.js'
import { hostMaxOpenFiles, sandboxSpec } from '../runtime/spec.js'
import type { TemplateMetadata } from '../templates/metadata.js'
import { layerDirs } from '../templates/store.js'
import { volumeBinds } from '../volumes/binds.js'
import type { VolumeMount } from '../volumes/registry.js'
import { listenAgain, readdress, readEnvdToken, runscOf } from './checkpoint.js'
import { linkLowers, lowerEtc } from './lowers.js'
import { initEnvd, waitForPort } from './readiness.js'
import { sandboxPaths } from './record.js'

export interface BootSpec {
  sandboxId: string
  template: TemplateMetadata
  cpuCount: number
  memoryMb: number
  envVars: Record<string, string>
  envdAccessToken: string | undefined
  policy: NetworkPolicy
  volumeMounts: VolumeMount[]
  isolation: Isolation
  /** A gVisor snapshot's memory image to restore instead of a fresh first process. */
  memoryImage?: string
  /** A warm sandbox: envd is left uninitialised until a create claims it (see warm.ts). */
  warm?: boolean
}

const READY_TIMEOUT_MS = 30_000

/**
 * Starts the container of a sandbox whose writable layer exists (new, or a
 * snapshot being resumed cold): names it in the layer, mounts the overlay,
 * runs runc, waits for the first process and hands envd its settings. Each
 * step registers its undo on `cleanup`; the writable layer itself is the
 * caller's. With a memory image (gVisor), the snapshot's processes are
 * restored instead; a restore that fails (or an envd that refuses the new
 * settings: a secure source's envd wants its own token) falls back to a
 * fresh boot on the same files. Says which happened.
 */
export async function bootSandbox(
  ctx: NodeContext,
  spec: BootSpec,
  slot: NetworkSlot,
  cleanup: CleanupStack,
): Promise<'memory' | 'boot'> {
  const { cfg } = ctx
  const paths = sandboxPaths(cfg.dataDir, spec.sandboxId)
  const id = containerId(cfg, spec.sandboxId)
  const layers = layerDirs(spec.template)
  const runtime = ctx.runtimes.forNew(spec.isolation)
  // The sandbox's own rules are in force before its first process runs.
  if (spec.isolation === 'gvisor') await ctx.gvisorNetwork.attach(slot, spec.policy.egress, cleanup)
  else if (hasEgressRules(spec.policy.egress)) await applyEgressRules(ctx, slot, spec.policy.egress)
  // A files-only snapshot keeps its disk unmounted until it boots again.
  if (!mountsUnder(paths.disk).includes(paths.disk)) {
    await mountDisk(paths.image, paths.disk)
    cleanup.push('disk', () => unmount(paths.disk))
  }
  writeIdentity(
    paths.upper,
    lowerEtc(ctx.templatesDir, layers),
    spec.template.uidBase,
    spec.sandboxId,
    slot,
  )
  // overlayfs needs an empty work directory on every mount.
  rmSync(paths.work, { recursive: true, force: true })
  mkdirSync(paths.work)
  if (!existsSync(paths.rootfs)) mkdirSync(paths.rootfs)
  if (!existsSync(paths.templates)) symlinkSync(ctx.templatesDir, paths.templates)
  await mountOverlay({
    cwd: paths.dir,
    lowers: linkLowers(paths.dir, paths.templates, layers),
    upper: relative(paths.dir, paths.upper),
    work: relative(paths.dir, paths.work),
    target: paths.rootfs,
  })
  cleanup.push('root filesystem', () => unmount(paths.rootfs))
  if (spec.isolation === 'gvisor') prepareGvisorRoot(paths.rootfs, spec.template.uidBase)
  const volumes = volumeBinds(cfg.dataDir, paths.rootfs, spec.volumeMounts)

  writeFileSync(
    join(paths.bundle, 'config.json'),
    JSON.stringify(bundleSpec(ctx, spec, paths.rootfs, slot, volumes)),
    { mode: 0o600 },
  )
  // Registered first: a start that fails halfway may leave the container behind.
  cleanup.push('container', () => runtime.destroy(id))
  const ready = () =>
    waitForPort(slot.sandboxIp, cfg.readyPort, {
      timeoutMs: READY_TIMEOUT_MS,
      alive: async () => (await runtime.state(id))?.status === 'running',
    })
  if (spec.memoryImage && spec.isolation === 'gvisor') {
    try {
      await runscOf(ctx).restore(id, paths.bundle, spec.memoryImage, paths.log)
      await listenAgain(runscOf(ctx), id)
      await ready()
      // A snapshot's envd holds its source's token; a sandbox's own, its own.
      await initSandboxEnvd(
        ctx,
        spec,
        slot,
        readEnvdToken(spec.memoryImage) ?? spec.envdAccessToken,
      )
      return 'memory'
    } catch (err) {
      ctx.log.warn({ err, sandboxId: spec.sandboxId }, 'memory restore failed; booting on files')
      await runtime.destroy(id)
      // The restored stack took eth0's address; the fresh boot reads it there again.
      await readdress(slot)
    }
  }
  await runtime.runDetached(id, paths.bundle, paths.log)
  await ready()
  if (!spec.warm) await initSandboxEnvd(ctx, spec, slot)
  return 'boot'
}

/** Hands envd the sandbox's settings: its token, its environment, its defaults. */
export async function initSandboxEnvd(
  ctx: NodeContext,
  spec: Pick<BootSpec, 'sandboxId' | 'template' | 'envVars' | 'envdAccessToken'>,
  slot: NetworkSlot,
  /** The token envd holds already (a restored envd's: its source's). */
  currentToken?: string,
): Promise<void> {
  if (!ctx.envd) return
  await initEnvd(
    slot.sandboxIp,
    ctx.cfg.readyPort,
    {
      ...(spec.envdAccessToken ? { accessToken: spec.envdAccessToken } : {}),
      envVars: {
        ...spec.template.envVars,
        ...spec.envVars,
        E2B_SANDBOX: 'true',
        E2B_SANDBOX_ID: spec.sandboxId,
      },
      defaultUser: spec.template.defaultUser,
      defaultWorkdir: spec.template.defaultWorkdir,
    },
    currentToken,
  )
}

/** Loads a sandbox namespace's ruleset with these egress rules (one nft transaction). */
export async function applyEgressRules(
  ctx: NodeContext,
  slot: NetworkSlot,
  egress: EgressPolicy,
): Promise<void> {
  if (ctx.gvisorNetwork.has(slot)) await ctx.gvisorNetwork.apply(slot, egress)
  else await applyInNetns(slot.netns, ctx.tableFor(slot, egress))
}

/** A fresh writable layer, owned by the sandbox's root. */
export function createUpper(upper: string, uidBase: number): void {
  mkdirSync(upper)
  chownSync(upper, uidBase, uidBase)
}

/**
 * The files that name this sandbox and its current address, written into
 * its writable layer before each boot (a cold resume gets a new address).
 * /etc in the layer copies the template's owner and mode so the merged view
 * does not change them. A resumed sandbox's layer was written by its own
 * root, so nothing in it is followed: an `etc` that is not a directory is
 * replaced by one, and each file is made afresh (O_EXCL, O_NOFOLLOW, owner
 * set on the open file) — a link planted at /etc/hosts must not make the
 * host write, or chown, the file it points to.
 */
export function writeIdentity(
  upper: string,
  lower: { mode: number; uid: number; gid: number } | undefined,
  uidBase: number,
  sandboxId: string,
  slot: NetworkSlot,
): void {
  const etc = join(upper, 'etc')
  const st = lstatSync(etc, { throwIfNoEntry: false })
  if (!st?.isDirectory()) {
    if (st) rmSync(etc, { force: true })
    const want = lower ?? { mode: 0o755, uid: uidBase, gid: uidBase }
    mkdirSync(etc, { mode: want.mode & 0o7777 })
    chownSync(etc, want.uid, want.gid)
  }
  for (const [name, content] of Object.entries(identityFiles(sandboxId, slot))) {
    const path = join(etc, name)
    rmSync(path, { force: true, recursive: true })
    const fd = openSync(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    )
    try {
      writeSync(fd, content)
      fchownSync(fd, uidBase, uidBase)
    } finally {
      closeSync(fd)
    }
  }
}

/** /etc/hostname, /etc/hosts and /etc/resolv.conf of a sandbox at this address. */
export function identityFiles(sandboxId: string, slot: NetworkSlot): Record<string, string> {
  return {
    hostname: `${sandboxId}\n`,
    hosts: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${slot.sandboxIp}\t${sandboxId}\n`,
    'resolv.conf': `nameserver ${slot.hostIp}\noptions edns0\n`,
  }
}

function bundleSpec(
  ctx: NodeContext,
  spec: BootSpec,
  rootfs: string,
  slot: NetworkSlot,
  volumes: Array<{ source: string; destination: string }>,
): object {
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
    volumeMounts: volumes,
    lxcfs: ctx.lxcfs,
    isolation: spec.isolation,
  })
}
