// Kill: the API's answer (DELETE /sandboxes/{id} → 204, the SDK's kill) and
// nothing left behind. Against a `warren up` of its own:
//   kill (DELETE → 204)  vs  raw `runc kill KILL` + `runc delete --force`
//                             of another sandbox's container, in the same run
//   kill (DELETE → 204)  vs  GET /sandboxes/{id} of the same sandboxes (the
//                             API's own round trip, for scale)
// and the target, a kill median ≤ 30 ms. After each kill the
// sandbox's cgroup must hold no process (it is stopped when answered). Then
// `--cycles` create/kill cycles (4 at a time), after which the host must
// hold nothing of the node: no mount, namespace, veth, nft table, cgroup,
// loop device, runc state or sandbox directory (the teardowns finish in the
// background; they are waited for).
// Privileged (runc, netns, nft); traffic only to loopback. Build first, then:
//   npm run bench -- kill [--runs 50] [--batch 5] [--cycles 200] [--json]
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { api, eventually } from '../tests/helpers/api-client.js'
import { createKillCycles } from '../tests/helpers/cycles.js'
import { sandboxCgroup } from '../tests/helpers/node-fixture.js'
import { startWarren, type WarrenFixture } from '../tests/helpers/warren-fixture.js'
import { leftoversNow } from './lib/host.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, pct } from './lib/stats.js'

const values = benchArgs({
  runs: { type: 'string', default: '50' },
  /** Sandboxes created before each round of kills (they all hold memory at once). */
  batch: { type: 'string', default: '5' },
  cycles: { type: 'string', default: '200' },
})
const RUNS = Number(values.runs)
const BATCH = Number(values.batch)
const CYCLES = Number(values.cycles)
const TARGET_MS = 30

const now = () => performance.now()
const fmt = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : '-')

async function create(w: WarrenFixture): Promise<string> {
  const res = await api(w, 'POST', '/v2/sandboxes', {
    json: { templateID: 'base', timeout: 600, metadata: { bench: 'kill' } },
  })
  if (res.status !== 201) throw new Error(`create: ${res.status} ${res.text}`)
  return (res.body as { sandboxID: string }).sandboxID
}

async function kill(w: WarrenFixture, id: string): Promise<number> {
  const t = now()
  const res = await api(w, 'DELETE', `/sandboxes/${id}`)
  const ms = now() - t
  if (res.status !== 204) throw new Error(`kill ${id}: ${res.status} ${res.text}`)
  return ms
}

function runc(w: WarrenFixture, ...args: string[]): void {
  execFileSync('runc', ['--root', join(w.dataDir, 'runc'), ...args], { stdio: 'ignore' })
}

/** The processes left in a sandbox's cgroup (none once it is killed). */
function processesOf(w: WarrenFixture, id: string): number {
  const procs = join(sandboxCgroup(w.prefix, id, 'pids'), 'cgroup.procs')
  if (!existsSync(procs)) return 0
  try {
    return readFileSync(procs, 'utf8').split('\n').filter(Boolean).length
  } catch {
    return 0 // removed between the two calls
  }
}

/**
 * RUNS kills through the API, each answer followed by a look at the
 * sandbox's cgroup; and as many floors: another sandbox's container killed
 * and deleted by runc directly (then its kill through the API, untimed,
 * removes the rest).
 */
async function measure(w: WarrenFixture) {
  const kills: number[] = []
  const floors: number[] = []
  const gets: number[] = []
  let alive = 0
  while (kills.length < RUNS) {
    const ids = await Promise.all(Array.from({ length: 2 * BATCH }, () => create(w)))
    for (let i = 0; i < ids.length && kills.length < RUNS; i += 2) {
      const [measured, raw] = [ids[i]!, ids[i + 1]!]
      const t = now()
      runc(w, 'kill', `${w.prefix}-${raw}`, 'KILL')
      runc(w, 'delete', '--force', `${w.prefix}-${raw}`)
      floors.push(now() - t)
      const g = now()
      const got = await api(w, 'GET', `/sandboxes/${measured}`)
      gets.push(now() - g)
      if (got.status !== 200) throw new Error(`get ${measured}: ${got.status} ${got.text}`)
      kills.push(await kill(w, measured))
      alive += processesOf(w, measured)
      // Its container's death may already have been seen (then killed as `exited`: 404).
      const res = await api(w, 'DELETE', `/sandboxes/${raw}`)
      if (res.status !== 204 && res.status !== 404)
        throw new Error(`kill ${raw}: ${res.status} ${res.text}`)
    }
    process.stderr.write(`\rkills: ${kills.length}/${RUNS}   `)
  }
  process.stderr.write('\n')
  return { kills, floors, gets, alive }
}

async function main(): Promise<Figures> {
  console.log(
    `kill benchmark: ${RUNS} kills, batches of ${BATCH}, then ${CYCLES} create/kill cycles; ` +
      `${cpus().length} CPUs, load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  )
  // No warm namespaces: every namespace on the host is a sandbox's (exact leftover check).
  const w = await startWarren({ env: { WARREN_WARM_NETWORK_SLOTS: '0' } })
  const stop = () => {
    void w.teardown().finally(() => process.exit(130))
  }
  process.once('SIGINT', stop)
  try {
    const { kills, floors, gets, alive } = await measure(w)
    const m = median(kills)
    const f = median(floors)
    const g = median(gets)
    console.log()
    console.table([
      {
        measure: 'kill (DELETE → 204)',
        median: fmt(m),
        p95: fmt(pct(kills, 95)),
        floor: 'runc kill KILL + runc delete --force',
        'floor median': fmt(f),
        'floor p95': fmt(pct(floors, 95)),
        'median / floor': `${(m / f).toFixed(2)}×`,
      },
      {
        measure: 'kill (DELETE → 204)',
        median: fmt(m),
        p95: fmt(pct(kills, 95)),
        floor: 'GET /sandboxes/{id} (API round trip)',
        'floor median': fmt(g),
        'floor p95': fmt(pct(gets, 95)),
        'median / floor': `${(m / g).toFixed(2)}×`,
      },
    ])
    console.log(
      `target: kill median ≤ ${TARGET_MS} ms → ${fmt(m)}: ${m <= TARGET_MS ? 'met' : 'NOT met'}`,
    )
    console.log(`processes found in a killed sandbox's cgroup after its 204: ${alive}`)
    if (alive) throw new Error(`${alive} processes outlived their sandbox's kill`)

    const t = now()
    await createKillCycles(w, CYCLES)
    const cyclesS = (now() - t) / 1000
    let left: string[] = []
    const t2 = now()
    try {
      await eventually(
        'no leftovers',
        () => {
          left = leftoversNow(w.prefix, w.dataDir)
          return left.length === 0
        },
        60_000,
        100,
      )
    } catch {
      throw new Error(`after ${CYCLES} cycles, left on the host:\n  ${left.join('\n  ')}`)
    }
    const drainMs = now() - t2
    console.log(
      `${CYCLES} create/kill cycles in ${cyclesS.toFixed(1)} s; teardowns done ${fmt(drainMs)} ` +
        `after the last 204; left on the host: nothing (mounts, netns, veths, nft tables, ` +
        `cgroups, processes, loop devices, runc state, sandbox dirs)`,
    )
    return {
      killMs: m,
      killP95Ms: pct(kills, 95),
      killFloorMs: f,
      killOverFloor: m / f,
      apiGetMs: g,
      killOverApiGet: m / g,
      killTargetMs: TARGET_MS,
      cycles: CYCLES,
      cyclesLeftovers: left.length,
      teardownDrainMs: drainMs,
    }
  } finally {
    process.off('SIGINT', stop)
    await w.teardown()
  }
}

await runBenchmark('kill', values.json, main)
