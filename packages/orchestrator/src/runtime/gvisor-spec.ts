import { chownSync, existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Host threads gVisor itself needs besides the sandbox's tasks (its kernel's
 * and gofer's goroutine threads; ~60 for an idle envd): the host pids limit
 * of a gVisor sandbox is its pids limit plus this.
 */
export const GVISOR_PIDS_OVERHEAD = 256

/**
 * The sandbox's view of the system under gVisor. Its kernel makes /proc
 * and /sys itself, from the sandbox's own limits (memory, CPUs from the
 * quota) and without the host's devices, so the host-view mounts runc needs
 * (the empty /sys tmpfs, the cgroup tree, THP settings, LXCFS's files) are
 * left out: LXCFS's files would be read through the gofer and describe the
 * host's view of the whole sandbox. /tmp is bound to the root filesystem's
 * own /tmp: runsc otherwise puts a tmpfs there, in the sandbox's memory,
 * outside its disk and lost by a pause to files.
 */
export function gvisorViewMounts(rootfs: string): object[] {
  return [
    {
      destination: '/sys',
      type: 'sysfs',
      source: 'sysfs',
      options: ['nosuid', 'noexec', 'nodev', 'ro'],
    },
    {
      destination: '/tmp',
      type: 'bind',
      source: join(rootfs, 'tmp'),
      options: ['rbind', 'rw', 'nosuid', 'nodev'],
    },
  ]
}

/** The root filesystem's /tmp, which gvisorViewMounts binds (a template may lack it). */
export function prepareGvisorRoot(rootfs: string, uidBase: number): void {
  const tmp = join(rootfs, 'tmp')
  if (existsSync(tmp)) return
  mkdirSync(tmp, { mode: 0o1777 })
  chownSync(tmp, uidBase, uidBase)
}
