// Warm sandboxes: create → first command through the SDK, with and without a pool.
// Against a `warren up` of its own with WARREN_WARM_POOL=base=<pool>, then one
// without a pool, each create timed from Sandbox.create to the end of its
// first `commands.run('true')`, next to the raw `runc run /bin/true` floor
// (bench/lib/floor.ts) sampled before every create in the same run. Each
// pooled create waits for a full pool first (so each is served warm; a cold
// one fails the run). The refill rate: the pool is drained by back-to-back
// creates and timed until it is full again (warm sandboxes per second).
// Privileged (runc, netns, nft); traffic only to loopback and the sandboxes.
// Build first, then:
//   npm run bench -- warm [--runs 20] [--pool 2] [--json]
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { Sandbox } from 'e2b'
import { eventually } from '../tests/helpers/api-client.js'
import { fixtureSecret } from '../tests/helpers/orchestrator-client.js'
import { startWarren, type WarrenFixture } from '../tests/helpers/warren-fixture.js'
import { type Floor, prepareFloor } from './lib/floor.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, ms, pct } from './lib/stats.js'

const values = benchArgs({
  runs: { type: 'string', default: '20' },
  pool: { type: 'string', default: '2' },
})
const RUNS = Number(values.runs)
const POOL = Number(values.pool)
const WARMUP = 2
const REFILLS = 5

const now = () => performance.now()

async function readyWarm(w: WarrenFixture): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${w.ports.rpc}/metrics`, {
    headers: { 'x-warren-cluster-secret': fixtureSecret(w) },
  })
  const m = /^warren_node_warm_sandboxes\{template_id="base"\} (\d+)$/m.exec(await res.text())
  return m ? Number(m[1]) : 0
}

const poolFull = (w: WarrenFixture) =>
  eventually('the pool is full', async () => (await readyWarm(w)) >= POOL, 120_000, 5)

function servedWarm(w: WarrenFixture, id: string): boolean {
  const record = JSON.parse(
    readFileSync(join(w.dataDir, 'sandboxes', id, 'sandbox.json'), 'utf8'),
  ) as { hostName?: string }
  return record.hostName?.startsWith('warm-') ?? false
}

interface Series {
  create: number[]
  floor: number[]
}

/** Create → first command, RUNS times after WARMUP, a floor run before each. */
async function measure(w: WarrenFixture, floor: Floor, warm: boolean, label: string) {
  const out: Series = { create: [], floor: [] }
  for (let i = 0; i < WARMUP + RUNS; i++) {
    if (warm) await poolFull(w)
    const base = await floor.once()
    const t0 = now()
    const sbx = await Sandbox.create({ ...w.sdk, timeoutMs: 60_000 })
    const r = await sbx.commands.run('true')
    const t1 = now()
    if (r.exitCode !== 0) throw new Error(`first command exited ${r.exitCode}`)
    if (servedWarm(w, sbx.sandboxId) !== warm)
      throw new Error(`create ${i} was served ${warm ? 'cold' : 'warm'}`)
    await sbx.kill()
    if (i >= WARMUP) {
      out.create.push(t1 - t0)
      out.floor.push(base.runc)
    }
    process.stderr.write(`\r${label}: ${i + 1}/${WARMUP + RUNS}   `)
  }
  process.stderr.write('\n')
  return out
}

/** Drains the pool with back-to-back creates, then times its refill to full. */
async function refills(w: WarrenFixture): Promise<number[]> {
  const rates: number[] = []
  for (let i = 0; i < REFILLS; i++) {
    await poolFull(w)
    const drained = await Promise.all(
      Array.from({ length: POOL }, () => Sandbox.create({ ...w.sdk, timeoutMs: 60_000 })),
    )
    const t0 = now()
    await poolFull(w)
    rates.push(POOL / ((now() - t0) / 1000))
    await Promise.all(drained.map((s) => s.kill()))
    process.stderr.write(`\rrefill: ${i + 1}/${REFILLS}   `)
  }
  process.stderr.write('\n')
  return rates
}

function row(what: string, xs: number[], floor: number[]): string {
  const ratio = median(xs) / median(floor)
  return `${what.padEnd(34)}${ms(median(xs))}${ms(pct(xs, 90))}   ${ratio.toFixed(2)}×`
}

await runBenchmark('warm', values.json ?? false, async () => {
  const floor = prepareFloor()
  let warm: Series
  let rates: number[]
  let cold: Series
  try {
    const pooled = await startWarren({ env: { WARREN_WARM_POOL: `base=${POOL}` } })
    try {
      warm = await measure(pooled, floor, true, 'warm')
      rates = await refills(pooled)
    } finally {
      await pooled.teardown()
    }
    const plain = await startWarren()
    try {
      cold = await measure(plain, floor, false, 'cold')
    } finally {
      await plain.teardown()
    }
  } finally {
    await floor.close()
  }
  const floorAll = [...warm.floor, ...cold.floor]
  const figures: Figures = {
    floorMs: median(floorAll),
    warmCreateFirstCommandMs: median(warm.create),
    coldCreateFirstCommandMs: median(cold.create),
    warmOverFloor: median(warm.create) / median(warm.floor),
    coldOverFloor: median(cold.create) / median(cold.floor),
    warmOverCold: median(warm.create) / median(cold.create),
    refillWarmPerS: median(rates),
  }
  console.log(
    `\nwarm sandboxes — ${RUNS} runs each, pool ${POOL}, ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)}`,
  )
  console.log(`${''.padEnd(34)}${'median'.padStart(10)}${'p90'.padStart(10)}   vs floor`)
  console.log(row('floor: runc run /bin/true', warm.floor, warm.floor))
  console.log(row('create → first command, warm', warm.create, warm.floor))
  console.log(row('floor (cold phase)', cold.floor, cold.floor))
  console.log(row('create → first command, no pool', cold.create, cold.floor))
  console.log(`warm / no pool: ${figures.warmOverCold!.toFixed(2)}×`)
  console.log(
    `refill: ${median(rates).toFixed(2)} warm sandboxes/s (median of ${REFILLS} refills of ${POOL}; min ${Math.min(...rates).toFixed(2)}, max ${Math.max(...rates).toFixed(2)})`,
  )
  return figures
})
