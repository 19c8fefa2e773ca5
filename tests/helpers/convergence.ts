// Whether what the API says and what the host holds agree: every live
// sandbox has exactly its host objects (record, container in the right
// state, namespace, mounts, disk, cgroup), nothing else of the node's
// prefix is there, and every running sandbox answers. For the fault suites,
// after a crash and a restart.

import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { api, eventually } from './api-client.js'
import { cgroupDirs, loopDevicesUnder, mountsUnder } from './node-fixture.js'
import { proxyRequest } from './proxy-client.js'
import { runcContainers } from './runc-list.js'
import type { WarrenFixture } from './warren-fixture.js'

export interface Live {
  id: string
  state: 'running' | 'paused'
  pausedKind?: 'memory' | 'files'
}

/** Every sandbox the API reports as running or paused, with its snapshot kind. */
export async function liveSandboxes(w: WarrenFixture): Promise<Live[]> {
  const res = await api(w, 'GET', '/v2/sandboxes?state=running,paused&limit=1000')
  if (res.status !== 200) throw new Error(`list: ${res.status} ${res.text}`)
  const listed = res.body as Array<{ sandboxID: string; state: 'running' | 'paused' }>
  const out: Live[] = []
  for (const s of listed) {
    const d = await api(w, 'GET', `/sandboxes/${s.sandboxID}`)
    if (d.status !== 200) continue
    const body = d.body as { state: 'running' | 'paused'; pausedKind?: 'memory' | 'files' }
    out.push({
      id: s.sandboxID,
      state: body.state,
      ...(body.pausedKind ? { pausedKind: body.pausedKind } : {}),
    })
  }
  return out
}

/** What of a node's prefix is on the host, by kind. */
export function hostInventory(w: WarrenFixture) {
  const sandboxesDir = join(w.dataDir, 'sandboxes')
  const dirs = existsSync(sandboxesDir) ? readdirSync(sandboxesDir).sort() : []
  const runcRoot = join(w.dataDir, 'runc')
  const containers = runcContainers(runcRoot)
  const netns = existsSync('/run/netns')
    ? readdirSync('/run/netns').filter((n) => new RegExp(`^${w.prefix}-n\\d+$`).test(n))
    : []
  const cgroups = new Set<string>()
  for (const dir of cgroupDirs(w.prefix))
    for (const e of readdirSync(dir, { withFileTypes: true }))
      if (e.isDirectory()) cgroups.add(e.name)
  return {
    dirs,
    containers: new Map(containers.map((c) => [c.id.slice(w.prefix.length + 1), c.status])),
    netns,
    mounts: mountsUnder(sandboxesDir),
    loops: loopDevicesUnder(w.dataDir),
    cgroups: [...cgroups].sort(),
  }
}

/** The mismatches between the API's live sandboxes and the host; empty when they agree. */
export function mismatches(w: WarrenFixture, live: Live[]): string[] {
  const host = hostInventory(w)
  const out: string[] = []
  const ids = live.map((s) => s.id).sort()
  if (JSON.stringify(host.dirs) !== JSON.stringify(ids))
    out.push(`sandbox dirs ${host.dirs.join(',')} vs live ${ids.join(',')}`)
  const withProcesses = live.filter((s) => s.state === 'running' || s.pausedKind === 'memory')
  for (const s of live) {
    const want =
      s.state === 'running' ? 'running' : s.pausedKind === 'memory' ? 'paused' : undefined
    const have = host.containers.get(s.id)
    if (have !== want)
      out.push(`${s.id} (${s.state}/${s.pausedKind}) container ${have} want ${want}`)
    const mounted = host.mounts.filter((m) => m.includes(`/${s.id}/`))
    if (mounted.length !== (want ? 2 : 0)) out.push(`${s.id} mounts ${mounted.join(',')}`)
  }
  for (const id of host.containers.keys())
    if (!ids.includes(id)) out.push(`container ${id} of no live sandbox`)
  if (host.netns.length !== withProcesses.length)
    out.push(`${host.netns.length} namespaces for ${withProcesses.length} sandboxes`)
  if (host.loops.length !== withProcesses.length)
    out.push(`${host.loops.length} loop devices for ${withProcesses.length} mounted disks`)
  const expectedCgroups = withProcesses.map((s) => s.id).sort()
  if (JSON.stringify(host.cgroups) !== JSON.stringify(expectedCgroups))
    out.push(`cgroups ${host.cgroups.join(',')} vs ${expectedCgroups.join(',')}`)
  return out
}

/**
 * Waits until the API and the host agree and every running sandbox's envd
 * answers through the proxy; returns the live sandboxes.
 */
export async function converged(w: WarrenFixture, ms = 30_000): Promise<Live[]> {
  let live: Live[] = []
  let last: string[] = []
  try {
    await eventually(
      'API and host agree',
      async () => {
        live = await liveSandboxes(w)
        last = mismatches(w, live)
        return last.length === 0
      },
      ms,
      250,
    )
  } catch (err) {
    throw new Error(`${(err as Error).message}:\n  ${last.join('\n  ')}`)
  }
  for (const s of live.filter((l) => l.state === 'running')) {
    const health = await proxyRequest(w, { headers: { 'e2b-sandbox-id': s.id }, path: '/health' })
    if (health.status !== 204)
      throw new Error(`${s.id} is running but envd answers ${health.status}`)
  }
  return live
}
