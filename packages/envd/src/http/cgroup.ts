import { readFileSync } from 'node:fs'

/** Pure parsers for cgroup v1/v2 files, so the numbers are the sandbox's, not the host's. */

/** memory.stat-style "key value" lines. */
export function parseKeyValues(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/)
    if (k && v !== undefined && /^\d+$/.test(v)) out.set(k, Number(v))
  }
  return out
}

/** A limit file: "max" or an absurd v1 value (no limit) → undefined. */
export function parseLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const t = text.trim()
  if (t === '' || t === 'max') return undefined
  const n = Number(t)
  if (!Number.isFinite(n) || n <= 0 || n >= 2 ** 62) return undefined
  return n
}

/** CPUs allowed by a CFS quota: v2 "quota period" or v1 quota/period (-1 = none). */
export function cpusFromQuota(
  quota: number | undefined,
  period: number | undefined,
): number | undefined {
  if (quota === undefined || period === undefined || quota <= 0 || period <= 0) return undefined
  return quota / period
}

/** "0-3,5" → 5 CPUs. */
export function countCpuList(text: string): number | undefined {
  let n = 0
  for (const part of text.trim().split(',')) {
    if (part === '') continue
    const [a, b] = part.split('-').map(Number)
    if (a === undefined || Number.isNaN(a)) return undefined
    n += b === undefined ? 1 : b - a + 1
  }
  return n || undefined
}

/** The cgroup paths of this process from /proc/self/cgroup: v2 under "", v1 per controller. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim())
    if (!m) continue
    const controllers = m[1] === '' ? [''] : m[1]!.split(',')
    for (const c of controllers) out.set(c, m[2]!)
  }
  return out
}

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/**
 * The text of a cgroup file: inside a container's cgroup namespace the own
 * path is "/" and the mount is the container's; on a host the path may or
 * may not be visible under the mount, so both are tried.
 */
export function readCgroupFile(
  mount: string,
  path: string | undefined,
  file: string,
): string | undefined {
  const candidates =
    path && path !== '/' ? [`${mount}${path}/${file}`, `${mount}/${file}`] : [`${mount}/${file}`]
  for (const c of candidates) {
    const text = readText(c)
    if (text !== undefined) return text
  }
  return undefined
}
