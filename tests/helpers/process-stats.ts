// A process's resident memory and open file descriptors, read from /proc:
// what the flood and soak runs watch for growth.
import { readdirSync, readFileSync } from 'node:fs'

export interface ProcessStats {
  rssMb: number
  fds: number
}

export function processStats(pid: number): ProcessStats {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0)
  return { rssMb: Math.round(rssKb / 102.4) / 10, fds: readdirSync(`/proc/${pid}/fd`).length }
}
