import { lstatSync } from 'node:fs'
import { join } from 'node:path'
import { WarrenError } from '@warren/shared'
import { mountsUnder } from '../runtime/overlay.js'
import { volumePaths } from './record.js'
import type { VolumeMount } from './registry.js'

/**
 * The host side of a sandbox's volume mounts, checked before runc sees them:
 * each volume's disk is mounted on the host (else the sandbox would get the
 * empty directory beneath), and each mount point in the sandbox's root is a
 * directory or missing (runc makes it), never a file and never reached
 * through a symlink: a clear error instead of runc's. The container is not
 * running yet, so nothing in it can change the tree meanwhile.
 */
export function volumeBinds(
  dataDir: string,
  rootfs: string,
  mounts: VolumeMount[],
): Array<{ source: string; destination: string }> {
  if (!mounts.length) return []
  const mounted = new Set(mountsUnder(join(dataDir, 'volumes')))
  return mounts.map((m) => {
    const source = volumePaths(dataDir, m.volumeId).root
    if (!mounted.has(source))
      throw new WarrenError('unavailable', `volume '${m.name}' is not mounted on this node`)
    checkMountPoint(rootfs, m.path)
    return { source, destination: m.path }
  })
}

function checkMountPoint(rootfs: string, path: string): void {
  let at = rootfs
  for (const name of path.split('/').filter(Boolean)) {
    at = join(at, name)
    let st: ReturnType<typeof lstatSync>
    try {
      st = lstatSync(at)
    } catch {
      return // missing from here on: runc makes the directories
    }
    if (!st.isDirectory())
      throw new WarrenError(
        'invalid_argument',
        `volume mount path '${path}' is not a directory in the sandbox (${st.isSymbolicLink() ? 'a symlink' : 'a file'} is in the way)`,
      )
  }
}
