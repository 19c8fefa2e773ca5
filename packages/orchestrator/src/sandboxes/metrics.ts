import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DiskUsage } from '../runtime/disk.js'

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

/**
 * Samples sandboxes on request. CPU use is the share of the sandbox's CPUs
 * used since its previous sample; disk use is its own disk's (one statfs).
 */
export class MetricsSampler {
  private readonly last = new Map<string, { at: number; cpuNs: number }>()

  sample(
    sandboxId: string,
    cgroup: string,
    disk: DiskUsage,
    limits: { cpuCount: number; memoryMb: number; startedAt: number },
  ): MetricsSample {
    const now = Date.now()
    const cg = readCgroup(cgroup)
    const prev = this.last.get(sandboxId) ?? { at: limits.startedAt, cpuNs: 0 }
    this.last.set(sandboxId, { at: now, cpuNs: cg.cpuNs })
    const wallNs = Math.max(1, (now - prev.at) * 1e6) * limits.cpuCount
    return {
      timestamp: now,
      cpuCount: limits.cpuCount,
      cpuUsedPct: Math.min(100, Math.max(0, ((cg.cpuNs - prev.cpuNs) / wallNs) * 100)),
      memUsed: cg.memUsed,
      memTotal: limits.memoryMb * 2 ** 20,
      memCache: cg.memCache,
      diskUsed: disk.usedBytes,
      diskTotal: disk.totalBytes,
    }
  }

  forget(sandboxId: string): void {
    this.last.delete(sandboxId)
  }
}

/** What Prometheus is told of one sandbox: totals and levels as the kernel counts them. */
export interface SandboxFigures {
  cpuSeconds: number
  memoryBytes: number
  memoryLimitBytes: number
  diskUsedBytes: number
  diskTotalBytes: number
  /** Bytes the sandbox received and sent through its veth (0 when it has no network now). */
  networkReceiveBytes: number
  networkTransmitBytes: number
}

/**
 * One sandbox's figures: its cgroup's CPU time and memory, its disk, and
 * the counters of its veth's host end — what the host end transmits, the
 * sandbox receives, and the other way round.
 */
export function readSandboxFigures(
  cgroup: string,
  disk: DiskUsage,
  hostIf: string | undefined,
  memoryMb: number,
): SandboxFigures {
  const cg = readCgroup(cgroup)
  const counter = (name: string) =>
    hostIf ? Number(read(join('/sys/class/net', hostIf, 'statistics', name)) ?? 0) : 0
  return {
    cpuSeconds: cg.cpuNs / 1e9,
    memoryBytes: cg.memUsed,
    memoryLimitBytes: memoryMb * 2 ** 20,
    diskUsedBytes: disk.usedBytes,
    diskTotalBytes: disk.totalBytes,
    networkReceiveBytes: counter('tx_bytes'),
    networkTransmitBytes: counter('rx_bytes'),
  }
}
