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

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100

/** User + system CPU milliseconds a process has used so far; undefined once it is gone. */
export function cpuMs(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command (which may hold spaces) start after its ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_S
  } catch {
    return undefined
  }
}

/** A process and those of its children whose command line contains `match` (all of them without). */
export function processGroup(pid: number, match?: string): number[] {
  let children: number[] = []
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {}
  const keep = (c: number) => {
    if (!match) return true
    try {
      return readFileSync(`/proc/${c}/cmdline`, 'utf8').includes(match)
    } catch {
      return false
    }
  }
  return [pid, ...children.filter(keep)]
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
