import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface MetricsSample {
  timestamp: number
  cpuCount: number
  cpuUsedPct: number
  memUsed: number
  memTotal: number
  memCache: number
  diskUsed: number
  diskTotal: number
}

/** The host runs the unified cgroup hierarchy (v2). */
export const CGROUP_V2 = existsSync('/sys/fs/cgroup/cgroup.controllers')

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return undefined
  }
}

function statField(text: string | undefined, key: string): number {
  const line = text?.split('\n').find((l) => l.startsWith(`${key} `))
  return line ? Number(line.split(' ')[1]) : 0
}

/** CPU time in ns and memory counters of one cgroup, v1 or v2. */
export function readCgroup(path: string): { cpuNs: number; memUsed: number; memCache: number } {
  if (CGROUP_V2) {
    const dir = join('/sys/fs/cgroup', path)
    const stat = read(join(dir, 'memory.stat'))
    return {
      cpuNs: statField(read(join(dir, 'cpu.stat')), 'usage_usec') * 1000,
      memUsed: Number(read(join(dir, 'memory.current')) ?? 0),
      memCache: statField(stat, 'file'),
    }
  }
  const stat = read(join('/sys/fs/cgroup/memory', path, 'memory.stat'))
  return {
    cpuNs: Number(read(join('/sys/fs/cgroup/cpuacct', path, 'cpuacct.usage')) ?? 0),
    memUsed: Number(read(join('/sys/fs/cgroup/memory', path, 'memory.usage_in_bytes')) ?? 0),
    memCache: statField(stat, 'total_cache'),
  }
}

/** Bytes used by a directory tree (its writable layer), counted once per inode. */
export function treeUsage(root: string): number {
  const seen = new Set<number>()
  let total = 0
  const stack = [root]
  while (stack.length) {
    const path = stack.pop()!
    let st: ReturnType<typeof lstatSync>
    try {
      st = lstatSync(path)
    } catch {
      continue
    }
    if (seen.has(st.ino)) continue
    seen.add(st.ino)
    total += st.blocks * 512
    if (st.isDirectory()) {
      try {
        for (const name of readdirSync(path)) stack.push(join(path, name))
      } catch {
        // vanished while walking
      }
    }
  }
  return total
}

/**
 * Samples sandboxes on request. CPU use is the share of the sandbox's CPUs
 * used since its previous sample; the writable layer's size is re-measured at
 * most every 30 s, since walking it is the expensive part.
 */
export class MetricsSampler {
  private readonly last = new Map<string, { at: number; cpuNs: number }>()
  private readonly disk = new Map<string, { at: number; bytes: number }>()

  sample(
    sandboxId: string,
    cgroup: string,
    upper: string,
    limits: { cpuCount: number; memoryMb: number; diskSizeMb: number; startedAt: number },
  ): MetricsSample {
    const now = Date.now()
    const cg = readCgroup(cgroup)
    const prev = this.last.get(sandboxId) ?? { at: limits.startedAt, cpuNs: 0 }
    this.last.set(sandboxId, { at: now, cpuNs: cg.cpuNs })
    const wallNs = Math.max(1, (now - prev.at) * 1e6) * limits.cpuCount
    let disk = this.disk.get(sandboxId)
    if (!disk || now - disk.at > 30_000) {
      disk = { at: now, bytes: treeUsage(upper) }
      this.disk.set(sandboxId, disk)
    }
    return {
      timestamp: now,
      cpuCount: limits.cpuCount,
      cpuUsedPct: Math.min(100, Math.max(0, ((cg.cpuNs - prev.cpuNs) / wallNs) * 100)),
      memUsed: cg.memUsed,
      memTotal: limits.memoryMb * 2 ** 20,
      memCache: cg.memCache,
      diskUsed: disk.bytes,
      diskTotal: limits.diskSizeMb * 2 ** 20,
    }
  }

  forget(sandboxId: string): void {
    this.last.delete(sandboxId)
    this.disk.delete(sandboxId)
  }
}
