import { readFileSync } from 'node:fs'
import { hostLeftovers } from '../../tests/helpers/node-fixture.js'

/** A process's /proc/<pid>/smaps_rollup, in kB by field (Private_Dirty, Pss, …). */
export function smapsRollup(pid: number): Record<string, number> {
  const out: Record<string, number> = {}
  for (const line of readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line)
    if (m) out[m[1]!] = Number(m[2])
  }
  return out
}

/**
 * What the node of `prefix` left on the host; a failed inventory (`runc
 * list` racing a teardown's `runc delete`) is one entry, so callers look again.
 */
export function leftoversNow(prefix: string, dataDir: string): string[] {
  try {
    return hostLeftovers(prefix, dataDir)
  } catch (err) {
    return [`(inventory failed: ${(err as Error).message})`]
  }
}
