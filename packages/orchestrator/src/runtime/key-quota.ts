import { readFileSync, writeFileSync } from 'node:fs'
import type { Logger } from '@warren/shared'

/**
 * runc gives every container a session keyring of its own, created by the
 * container's root — one host uid (WARREN_UID_BASE) for every sandbox — and
 * counted against that uid's key quota. The kernel's default quota for a
 * non-root uid (200 keys, 20 000 bytes) stops a node at about 200 sandboxes
 * with "unable to create session key: disk quota exceeded". Raised at start
 * to what container hosts are advised to use; never lowered.
 */
const QUOTA = { maxkeys: 20_000, maxbytes: 2_000_000 }

export function ensureKeyQuota(log: Logger): void {
  for (const [name, want] of Object.entries(QUOTA)) {
    const path = `/proc/sys/kernel/keys/${name}`
    try {
      const now = Number(readFileSync(path, 'utf8').trim())
      if (now >= want) continue
      writeFileSync(path, String(want))
      log.info({ sysctl: `kernel.keys.${name}`, from: now, to: want }, 'raised the key quota')
    } catch (err) {
      log.warn({ err, path }, 'cannot raise the key quota: a node holds about 200 sandboxes')
    }
  }
}
