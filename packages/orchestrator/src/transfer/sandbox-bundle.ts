import { existsSync, mkdirSync, mkdtempSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { type BundleManifest, CleanupStack, WarrenError } from '@warren/shared'
import { containerId, type NodeContext } from '../context.js'
import { run } from '../exec.js'
import { createDiskImage, mountDisk } from '../runtime/disk.js'
import { mountsUnder, unmount } from '../runtime/overlay.js'
import { removeSandboxDir } from '../sandboxes/destroy.js'
import {
  type SandboxRecord,
  sandboxPaths,
  sandboxRecordSchema,
  writeRecord,
} from '../sandboxes/record.js'
import type { BundleStore } from './bundle-store.js'
import { packDir, unpackInto } from './tar.js'

/** The one file of a files-layer snapshot: the writable layer as a tar. */
const UPPER = 'upper.tar'
/** A gVisor sandbox paused with its processes saved: its checkpoint directory as a tar. */
const CHECKPOINT = 'checkpoint.tar'

/**
 * A paused sandbox's snapshot as a bundle in `store`: its writable layer
 * (one tar, content-addressed) and its node record as metadata. The caller
 * holds the sandbox's lock, so the layer does not change meanwhile: a
 * frozen sandbox's disk is mounted and flushed; a files-only one's image is
 * mounted read-only for the copy. A gVisor sandbox whose processes were
 * saved brings its checkpoint along.
 */
export async function packSandbox(
  ctx: NodeContext,
  record: SandboxRecord,
  store: BundleStore,
): Promise<BundleManifest> {
  if (record.state !== 'paused')
    throw new WarrenError('conflict', `sandbox ${record.sandboxId} is ${record.state}, not paused`)
  const paths = sandboxPaths(ctx.cfg.dataDir, record.sandboxId)
  const file = mountsUnder(paths.disk).includes(paths.disk)
    ? await packDir(paths.upper, (tar) => store.put(tar, UPPER))
    : await withImage(ctx, paths.image, (root) =>
        packDir(join(root, 'upper'), (tar) => store.put(tar, UPPER)),
      )
  const manifest: BundleManifest = {
    version: 1,
    kind: 'sandbox',
    id: record.sandboxId,
    createdAt: new Date().toISOString(),
    origin: ctx.cfg.nodeId,
    metadata: record,
    files: record.checkpointed
      ? [file, await packDir(paths.checkpoint, (tar) => store.put(tar, CHECKPOINT))]
      : [file],
  }
  await store.writeManifest(manifest)
  return manifest
}

async function withImage<T>(ctx: NodeContext, image: string, fn: (root: string) => Promise<T>) {
  const mnt = mkdtempSync(join(ctx.cfg.dataDir, '.bundle-'))
  try {
    await run('mount', ['-t', 'ext4', '-o', 'loop,ro,noload', image, mnt])
    try {
      return await fn(mnt)
    } finally {
      await unmount(mnt)
    }
  } finally {
    rmdirSync(mnt)
  }
}

/**
 * Makes a sandbox of this node from a snapshot bundle whose files are in
 * `store` (already checked against their hashes): a fresh disk image of the
 * sandbox's size holding the unpacked layer, and its record as a files-only
 * snapshot of this node (its container named with this node's prefix). Any
 * failure removes everything it made: the node is as before.
 */
export async function installSandbox(
  ctx: NodeContext,
  manifest: BundleManifest,
  store: BundleStore,
): Promise<SandboxRecord> {
  const parsed = sandboxRecordSchema.safeParse(manifest.metadata)
  const upper = manifest.files.find((f) => f.name === UPPER)
  if (!parsed.success || parsed.data.sandboxId !== manifest.id || !upper)
    throw new WarrenError('data_loss', `the snapshot of sandbox ${manifest.id} is malformed`)
  const sandboxId = manifest.id
  const paths = sandboxPaths(ctx.cfg.dataDir, sandboxId)
  if (existsSync(paths.dir))
    throw new WarrenError('already_exists', `sandbox ${sandboxId} already has files on this node`)
  const cleanup = new CleanupStack()
  try {
    mkdirSync(paths.dir, { recursive: true, mode: 0o711 })
    cleanup.push('sandbox directory', () => removeSandboxDir(paths.dir))
    const size = parsed.data.diskSizeMb
    await createDiskImage(paths.image, size, Math.max(1024, size * ctx.cfg.diskInodesPerMb))
    mkdirSync(paths.disk)
    await mountDisk(paths.image, paths.disk)
    cleanup.push('disk', () => unmount(paths.disk)) // idempotent
    mkdirSync(paths.upper)
    await unpackInto(store.open(upper), paths.upper)
    const checkpoint = manifest.files.find((f) => f.name === CHECKPOINT)
    if (checkpoint) {
      mkdirSync(paths.checkpoint, { mode: 0o700 })
      await unpackInto(store.open(checkpoint), paths.checkpoint)
    }
    // A files-only snapshot keeps its image unmounted (the boot mounts it).
    await unmount(paths.disk)
    // Its container here goes by its id, whatever it went by where it came from.
    const { hostName: _h, checkpointed: _c, ...theirs } = parsed.data
    const record: SandboxRecord = {
      ...theirs,
      ...(checkpoint ? { checkpointed: true as const } : {}),
      containerId: containerId(ctx.cfg, sandboxId),
      state: 'paused',
      pausedKind: 'files',
      pausedAt: parsed.data.pausedAt ?? manifest.createdAt,
      slotIndex: null,
      sandboxIp: null,
      hostIp: null,
    }
    writeRecord(ctx.cfg.dataDir, record)
    cleanup.release()
    return record
  } catch (err) {
    for (const e of await cleanup.run())
      ctx.log.error({ err: e, sandboxId }, 'rollback of a snapshot install failed')
    throw err
  }
}
