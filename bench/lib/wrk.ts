import { execFileSync } from 'node:child_process'
import { cpuMs } from './host.js'
import { median } from './stats.js'

export interface WrkResult {
  rps: number
  p50: number
  p99: number
  /** CPU time the proxy's processes spent per 1000 requests (when measured). */
  cpuMsPerK?: number
}

/** How long each path is driven, unmeasured, before its run: JIT, connection pools, background work settle. */
const WARMUP_SECONDS = 3

/**
 * wrk driving `url` for `seconds` after a warm-up, by default with 2 threads
 * and 32 connections: requests/s, p50 and p99 in ms, and the CPU the
 * `proxyPids` processes spent per 1000 requests. Any non-2xx answer fails it.
 */
export function wrkFor(seconds: number) {
  return (
    url: string,
    headers: Record<string, string>,
    proxyPids?: () => number[],
    connections = 32,
  ): WrkResult => runWrk(seconds, url, headers, proxyPids, connections)
}

function runWrk(
  seconds: number,
  url: string,
  headers: Record<string, string>,
  proxyPids: (() => number[]) | undefined,
  connections: number,
): WrkResult {
  const args = (seconds: number) => [
    `-t${Math.min(2, connections)}`,
    `-c${connections}`,
    `-d${seconds}s`,
    '--latency',
    ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    url,
  ]
  execFileSync('wrk', args(WARMUP_SECONDS), { encoding: 'utf8' })
  const pids = proxyPids?.() ?? []
  const cpuBefore = pids.reduce((t, p) => t + (cpuMs(p) ?? 0), 0)
  const out = execFileSync('wrk', args(seconds), { encoding: 'utf8' })
  const cpu = pids.reduce((t, p) => t + (cpuMs(p) ?? 0), 0) - cpuBefore
  const requests = Number(/(\d+) requests in/.exec(out)?.[1])
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
  const lat = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out)
    if (!m) return Number.NaN
    const v = Number(m[1])
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
  }
  if (/Non-2xx/.test(out)) throw new Error(`wrk saw errors:\n${out}`)
  return {
    rps,
    p50: lat('50'),
    p99: lat('99'),
    ...(pids.length ? { cpuMsPerK: (cpu / requests) * 1000 } : {}),
  }
}

/** Each figure's median over the runs. */
export function medianOf(runs: WrkResult[]): WrkResult {
  const cpu = runs.flatMap((r) => (r.cpuMsPerK === undefined ? [] : [r.cpuMsPerK]))
  return {
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    ...(cpu.length ? { cpuMsPerK: median(cpu) } : {}),
  }
}
