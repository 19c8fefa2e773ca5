import { statfsSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { availableParallelism, totalmem } from 'node:os'
import {
  countCpuList,
  cpusFromQuota,
  parseKeyValues,
  parseLimit,
  parseProcCgroup,
  readCgroupFile,
  readText,
} from './cgroup.js'
import { sendJson } from './respond.js'

const V2 = '/sys/fs/cgroup'

interface Sample {
  usageUs: number
  at: number
}

function cgroups() {
  const paths = parseProcCgroup(readText('/proc/self/cgroup') ?? '')
  const v2 = readText(`${V2}/cgroup.controllers`) !== undefined
  const read = (controller: string, v2name: string, v1name: string) =>
    v2
      ? readCgroupFile(V2, paths.get(''), v2name)
      : readCgroupFile(`${V2}/${controller}`, paths.get(controller), v1name)
  return { v2, read }
}

function cpuCount(cg: ReturnType<typeof cgroups>): number {
  let quota: number | undefined
  if (cg.v2) {
    const [q, p] = (cg.read('cpu', 'cpu.max', '') ?? '').trim().split(/\s+/)
    quota = cpusFromQuota(parseLimit(q), Number(p))
  } else {
    quota = cpusFromQuota(
      parseLimit(cg.read('cpu', '', 'cpu.cfs_quota_us')),
      parseLimit(cg.read('cpu', '', 'cpu.cfs_period_us')),
    )
  }
  const cpuset = countCpuList(
    cg.read('cpuset', 'cpuset.cpus.effective', 'cpuset.effective_cpus') ?? '',
  )
  const host = availableParallelism()
  return Math.max(1, Math.ceil(Math.min(quota ?? host, cpuset ?? host, host)))
}

function cpuUsageUs(cg: ReturnType<typeof cgroups>): number | undefined {
  if (cg.v2) return parseKeyValues(cg.read('cpu', 'cpu.stat', '') ?? '').get('usage_usec')
  const ns = parseLimit(cg.read('cpuacct', '', 'cpuacct.usage'))
  return ns === undefined ? undefined : ns / 1000
}

function memory(cg: ReturnType<typeof cgroups>) {
  const hostTotal = totalmem()
  const current = parseLimit(cg.read('memory', 'memory.current', 'memory.usage_in_bytes')) ?? 0
  const limit = parseLimit(cg.read('memory', 'memory.max', 'memory.limit_in_bytes'))
  const stat = parseKeyValues(cg.read('memory', 'memory.stat', 'memory.stat') ?? '')
  const cache = (cg.v2 ? stat.get('file') : (stat.get('total_cache') ?? stat.get('cache'))) ?? 0
  const inactive =
    (cg.v2
      ? stat.get('inactive_file')
      : (stat.get('total_inactive_file') ?? stat.get('inactive_file'))) ?? 0
  const total = Math.min(limit ?? hostTotal, hostTotal)
  // The working set, as container runtimes count it: reclaimable page cache is not "used".
  const used = Math.max(0, current - inactive)
  return { total, used, cache }
}

/**
 * GET /metrics: CPU (percent of the sandbox's CPUs since the previous call,
 * or over a short window on the first), memory and disk of the sandbox, read
 * from its cgroup (v1 or v2) and statfs of /.
 */
export function createMetricsHandler(): (res: ServerResponse) => Promise<void> {
  let last: Sample | undefined
  return async (res) => {
    const cg = cgroups()
    const count = cpuCount(cg)
    const sample = (): Sample | undefined => {
      const usageUs = cpuUsageUs(cg)
      return usageUs === undefined ? undefined : { usageUs, at: performance.now() }
    }
    let before = last
    if (!before || performance.now() - before.at > 60_000) {
      before = sample()
      await new Promise((r) => setTimeout(r, 100))
    }
    const now = sample()
    last = now
    let pct = 0
    if (before && now && now.at > before.at) {
      const elapsedUs = (now.at - before.at) * 1000
      pct = Math.min(100, Math.max(0, ((now.usageUs - before.usageUs) / (elapsedUs * count)) * 100))
    }
    const mem = memory(cg)
    let diskTotal = 0
    let diskUsed = 0
    try {
      const fs = statfsSync('/')
      diskTotal = fs.blocks * fs.bsize
      diskUsed = (fs.blocks - fs.bfree) * fs.bsize
    } catch {
      // no statfs: report zeros
    }
    sendJson(res, 200, {
      ts: Math.floor(Date.now() / 1000),
      cpu_count: count,
      cpu_used_pct: Math.round(pct * 100) / 100,
      mem_total: mem.total,
      mem_used: mem.used,
      mem_cache: mem.cache,
      mem_total_mib: Math.floor(mem.total / 1048576),
      mem_used_mib: Math.floor(mem.used / 1048576),
      disk_total: diskTotal,
      disk_used: diskUsed,
    })
  }
}
