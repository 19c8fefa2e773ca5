import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { CleanupStack, type Logger, type OrchestratorConfig, WarrenError } from '@warren/shared'
import { createDiskImage, freeMb, mountDisk } from '../runtime/disk.js'
import { mountsUnder, unmount } from '../runtime/overlay.js'
import { removeSandboxDir } from '../sandboxes/destroy.js'
import {
  readVolumeRecord,
  type VolumeRecord,
  volumePaths,
  volumesDir,
  writeVolumeRecord,
} from './record.js'

/** A new volume's root belongs to the sandbox's `user` (uid and gid 1000), as a fresh home does. */
export const VOLUME_OWNER = 1000

/**
 * Makes a volume's disk: a sparse ext4 image of its size (the size and
 * inode count are its limits, ENOSPC past them), mounted at its root on
 * the host, the root owned by the sandbox's user. The record is written
 * last: a directory without one is debris of a create that did not finish.
 */
export async function createVolumeDisk(
  cfg: OrchestratorConfig,
  record: VolumeRecord,
  log: Logger,
): Promise<void> {
  const paths = volumePaths(cfg.dataDir, record.volumeId)
  if (existsSync(paths.dir))
    throw new WarrenError('already_exists', `volume ${record.volumeId} already exists`)
  const free = freeMb(cfg.dataDir)
  if (free < cfg.diskReserveMb) {
    throw new WarrenError(
      'capacity_exhausted',
      `this node's data disk is full: ${free} MB free, ${cfg.diskReserveMb} MB kept in reserve`,
    )
  }
  const cleanup = new CleanupStack()
  try {
    prepareVolumesDir(cfg.dataDir)
    mkdirSync(paths.dir, { mode: 0o711 })
    cleanup.push('volume directory', () => removeSandboxDir(paths.dir))
    await createDiskImage(
      paths.image,
      record.sizeMb,
      Math.max(1024, record.sizeMb * cfg.diskInodesPerMb),
    )
    mkdirSync(paths.root, { mode: 0o700 })
    await mountDisk(paths.image, paths.root)
    cleanup.push('mount', () => unmount(paths.root))
    const owner = cfg.uidBase + VOLUME_OWNER
    chownSync(paths.root, owner, owner)
    chmodSync(paths.root, 0o755)
    // mkfs's lost+found would show in every listing, owned by nobody the sandbox knows.
    rmdirSync(join(paths.root, 'lost+found'))
    writeVolumeRecord(cfg.dataDir, record)
    cleanup.release()
  } catch (err) {
    for (const e of await cleanup.run())
      log.error({ err: e, volumeId: record.volumeId }, 'volume rollback step failed')
    if (err instanceof WarrenError) throw err
    throw new WarrenError('internal', `could not create volume: ${(err as Error).message}`, {
      cause: err,
    })
  }
}

/** Unmounts a volume and removes its files (image and record). */
export async function deleteVolumeDisk(cfg: OrchestratorConfig, volumeId: string): Promise<void> {
  const paths = volumePaths(cfg.dataDir, volumeId)
  await unmount(paths.root)
  removeSandboxDir(paths.dir)
}

/**
 * At node start: every recorded volume mounted on the host again (a restart
 * of Warren may have left them mounted; a reboot did not), directories
 * without a record removed. A volume whose disk does not mount is reported
 * broken: it stays on disk, unusable until deleted.
 */
export async function loadVolumes(
  cfg: OrchestratorConfig,
  log: Logger,
): Promise<{ ready: VolumeRecord[]; broken: VolumeRecord[] }> {
  prepareVolumesDir(cfg.dataDir)
  const mounted = new Set(mountsUnder(volumesDir(cfg.dataDir)))
  const ready: VolumeRecord[] = []
  const broken: VolumeRecord[] = []
  for (const volumeId of readdirSync(volumesDir(cfg.dataDir))) {
    const paths = volumePaths(cfg.dataDir, volumeId)
    const record = readVolumeRecord(cfg.dataDir, volumeId)
    if (!record || record.volumeId !== volumeId) {
      log.warn({ volumeId }, 'removing volume debris')
      await deleteVolumeDisk(cfg, volumeId).catch((err) =>
        log.error({ err, volumeId }, 'volume debris removal failed'),
      )
      continue
    }
    try {
      if (!mounted.has(paths.root)) await mountDisk(paths.image, paths.root)
      ready.push(record)
    } catch (err) {
      log.error({ err, volumeId }, 'volume disk does not mount')
      broken.push(record)
    }
  }
  return { ready, broken }
}

/** Unmounts every volume (the node stops with no sandbox that could hold one). */
export async function unmountVolumes(cfg: OrchestratorConfig): Promise<void> {
  for (const m of mountsUnder(volumesDir(cfg.dataDir))) await unmount(m)
}

/** Traversable by sandbox roots (runc reaches a volume's root as the mapped uid), listable by root only. */
function prepareVolumesDir(dataDir: string): void {
  mkdirSync(volumesDir(dataDir), { recursive: true, mode: 0o711 })
  chmodSync(volumesDir(dataDir), 0o711)
}
