import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '@warren/shared'

/**
 * Kernel limits that every sandbox on the node shares, raised at node start
 * to what a host of a few hundred sandboxes needs; never lowered.
 *
 * - Keys: runc gives every container a session keyring of its own, created
 *   by the container's root — one host uid (WARREN_UID_BASE) for every
 *   sandbox — and counted against that uid's key quota. The default (200
 *   keys, 20 000 bytes) stops a node at about 200 sandboxes with "unable to
 *   create session key: disk quota exceeded".
 * - inotify: a user namespace's instances and watches count, besides its
 *   own, against the uid that created it in the parent namespace: every
 *   sandbox's against root's on the host. The default (128 instances) lets
 *   only 128 processes across all sandboxes (and root's own on the host)
 *   watch files at once — a file watch in envd, a dev server, an editor;
 *   the 129th gets EMFILE.
 */
export const HOST_LIMITS: ReadonlyArray<{ sysctl: string; min: number; without: string }> = [
  { sysctl: 'kernel/keys/maxkeys', min: 20_000, without: 'a node holds about 200 sandboxes' },
  { sysctl: 'kernel/keys/maxbytes', min: 2_000_000, without: 'a node holds about 200 sandboxes' },
  {
    sysctl: 'fs/inotify/max_user_instances',
    min: 8192,
    without: 'only 128 processes across all sandboxes can watch files',
  },
  {
    sysctl: 'fs/inotify/max_user_watches',
    min: 524_288,
    without: 'sandboxes share a small budget of file watches',
  },
]

/** Raises each limit below its minimum (`root`: /proc/sys, or a test's stand-in). */
export function ensureHostLimits(log: Logger, root = '/proc/sys'): void {
  for (const { sysctl, min, without } of HOST_LIMITS) {
    const path = join(root, sysctl)
    try {
      const now = Number(readFileSync(path, 'utf8').trim())
      if (now >= min) continue
      writeFileSync(path, String(min))
      log.info({ sysctl: sysctl.replaceAll('/', '.'), from: now, to: min }, 'raised a host limit')
    } catch (err) {
      log.warn({ err, path }, `cannot raise a host limit: ${without}`)
    }
  }
}
