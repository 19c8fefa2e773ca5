import { statfsSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { run } from '../exec.js'

/**
 * A sandbox's own disk: a sparse ext4 image of its disk size, loop-mounted,
 * holding its writable layer. The filesystem's size and inode count are the
 * sandbox's limits (ENOSPC past either), enforced by the kernel without
 * quota support, and a sandbox can never write to the host's filesystem
 * beyond its image.
 */
export async function createDiskImage(
  image: string,
  sizeMb: number,
  inodes: number,
): Promise<void> {
  const file = await open(image, 'wx', 0o600)
  try {
    await file.truncate(sizeMb * 2 ** 20)
  } finally {
    await file.close()
  }
  // No reserved blocks (the sandbox's root may use all of it); lazy init keeps mkfs instant.
  await run('mkfs.ext4', [
    '-q',
    '-F',
    '-m',
    '0',
    '-N',
    String(inodes),
    '-E',
    'lazy_itable_init=1,lazy_journal_init=1,nodiscard',
    image,
  ])
}

/**
 * Loop-mounts an image. The device comes from `losetup --find` (the kernel
 * hands out a free one) rather than from `mount -o loop`, whose check for an
 * overlapping device reads every loop device's backing file: with 500
 * sandboxes on the node that made each mount 3-4× slower (bench/idle.ts).
 * Detaching it once mounted only marks it to go with its last user, as
 * `mount -o loop` does (autoclear): the unmount frees it.
 */
export async function mountDisk(image: string, target: string): Promise<void> {
  const device = (await run('losetup', ['--find', '--show', image])).trim()
  try {
    await run('mount', ['-t', 'ext4', '-o', 'noatime,nosuid,nodev', device, target])
  } finally {
    await run('losetup', ['--detach', device])
  }
}

/**
 * Lets go of the loop devices backed by files under `dir` (the node's data,
 * at its start). A node that died between attaching a disk and detaching it
 * (see mountDisk) left a device without autoclear: one no longer mounted is
 * freed now; one still mounted gets autoclear and goes with its unmount,
 * as every other disk's does. Detaching is refused for nothing else.
 */
export async function releaseLoopDevices(dir: string): Promise<number> {
  const out = await run('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE'])
  const devices =
    (
      JSON.parse(out.trim() || '{}') as {
        loopdevices?: { name: string; 'back-file': string | null }[]
      }
    ).loopdevices ?? []
  let released = 0
  for (const d of devices) {
    // A deleted backing file (its sandbox directory removed) keeps the device.
    if (!d['back-file']?.replace(/ \(deleted\)$/, '').startsWith(`${dir}/`)) continue
    try {
      await run('losetup', ['--detach', d.name])
      released++
    } catch {
      // Gone meanwhile.
    }
  }
  return released
}

export interface DiskUsage {
  usedBytes: number
  totalBytes: number
  inodesUsed: number
  inodesTotal: number
}

/** What a mounted disk holds: one statfs, no tree walk. */
export function diskUsage(mountpoint: string): DiskUsage {
  const s = statfsSync(mountpoint)
  return {
    usedBytes: (s.blocks - s.bfree) * s.bsize,
    totalBytes: s.blocks * s.bsize,
    inodesUsed: s.files - s.ffree,
    inodesTotal: s.files,
  }
}

/** Free space on the filesystem holding `path`, in MB (what an unprivileged writer may use). */
export function freeMb(path: string): number {
  const s = statfsSync(path)
  return Math.floor((s.bavail * s.bsize) / 2 ** 20)
}
