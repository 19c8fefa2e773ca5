// The store at 10 000 sandboxes: expiry precision and cost, PostgreSQL beside SQLite.
// Records and deadlines only, no containers: the lifecycle engine drives the
// in-memory stand-in node, on each store in turn, in the same run:
//   - create: time and CPU per sandbox (N creates through the engine, 16 at a time)
//   - lease extension: time and CPU per refresh (N refreshes, 16 at a time)
//   - expiry: N deadlines spread over a window; how late after its endAt each
//     one fired (median, p99, max), and the CPU per expiry
// CPU is this process's plus, for PostgreSQL, its server's (a private,
// durable cluster on loopback: fsync on, as in production). SQLite is the
// baseline: each PostgreSQL figure is also printed as a ratio to it.
// The default window (30 s: 333 expiries a second) keeps a 2-core machine
// under its capacity, so lateness is precision, not a backlog.
// Lateness is measured twice: when the expiry was decided (the store's
// killed_at: the claim on PostgreSQL, the deadline timer on SQLite) and when
// the node removed the sandbox (the decision plus the node call and the
// final write, queued behind --expiry-concurrency of them).
//   npm run bench -- store [--sandboxes 10000] [--window 30] [--expiry-concurrency 8] [--json]
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CreateSandboxRequest } from '../packages/api/src/lifecycle/create.js'
import { sandboxesInStates } from '../packages/api/src/store/sandboxes.js'
import { startPostgres } from '../tests/helpers/postgres.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, pct } from './lib/stats.js'
import { type Rig, selfCpuMs, serverCpuMs, startRig } from './lib/store-rig.js'

const values = benchArgs({
  sandboxes: { type: 'string', default: '10000' },
  /** Seconds over which the deadlines are spread. */
  window: { type: 'string', default: '30' },
  /** Expiries whose node call runs at once (the API's maxConcurrentExpiries, 8). */
  'expiry-concurrency': { type: 'string', default: '8' },
})
const N = Number(values.sandboxes)
const WINDOW_S = Number(values.window)
const EXPIRY_CONCURRENCY = Number(values['expiry-concurrency'])
const PARALLEL = 16

interface Cost {
  /** Wall time per operation with PARALLEL in flight (1 / throughput), ms; NaN for expiries (their time is their lateness). */
  timeMs: number
  /** CPU per operation (API process + database server), ms. */
  cpuMs: number
}

interface StoreFigures {
  create: Cost
  extend: Cost
  expiry: Cost
  lateMedianMs: number
  lateP99Ms: number
  lateMaxMs: number
  removedMedianMs: number
  removedP99Ms: number
  removedMaxMs: number
}

async function notKilled(rig: Rig): Promise<number> {
  const { n } = await rig.db
    .selectFrom('sandboxes')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', '!=', 'killed')
    .executeTakeFirstOrThrow()
  return Number(n)
}

/** Runs `op` for each index, PARALLEL at a time; wall and CPU per operation. */
async function measure(
  cpu: () => number,
  count: number,
  op: (i: number) => Promise<unknown>,
): Promise<Cost> {
  const t0 = performance.now()
  const c0 = cpu()
  let next = 0
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < count) await op(next++)
    }),
  )
  return { timeMs: (performance.now() - t0) / count, cpuMs: (cpu() - c0) / count }
}

async function run(label: string, rig: Rig, serverCpu: () => number): Promise<StoreFigures> {
  const cpu = () => selfCpuMs() + serverCpu()
  const { engine, team } = rig
  const progress = (what: string) => process.stderr.write(`${label}: ${what}\n`)
  const ids: string[] = []
  const base: Omit<CreateSandboxRequest, 'timeoutS'> = {
    templateId: 'base',
    cluster: null,
    isolation: 'runc',
    metadata: {},
    envVars: {},
    secure: true,
    lifecycle: {
      onTimeout: 'kill',
      autoResume: false,
      autoPauseMemory: true,
      keepaliveTraffic: false,
    },
    network: {},
    allowInternetAccess: null,
    volumeMounts: [],
  }
  progress(`${N} creates`)
  const create = await measure(cpu, N, async () => {
    ids.push((await engine.create(team, { ...base, timeoutS: 3600 })).sandboxId)
  })
  progress(`${N} lease extensions`)
  const extend = await measure(cpu, N, (i) => engine.refresh(team, ids[i]!, 3000))
  // Deadlines: now + a whole number of seconds (as the API takes them),
  // spread over the window, set in one pass.
  progress(`${N} deadlines over ${WINDOW_S} s`)
  // The first deadline comes after the pass is over (about 250 a second on a
  // busy 2-core machine): no expiry competes with setting the others.
  const lead = 5 + Math.ceil(N / 250)
  await measure(cpu, N, (i) => engine.setTimeout(team, ids[i]!, lead + (i % WINDOW_S)))
  const deadlines = new Map(
    (await sandboxesInStates(rig.db, ['running', 'killing', 'killed'])).map((s) => [
      s.sandboxId,
      s.endAt,
    ]),
  )
  const first = Math.min(...deadlines.values())
  // Expiry cost: what the process and server spend from the first deadline to the last expiry.
  await sleep(Math.max(0, first - engine.clock.now()))
  const c0 = cpu()
  // Watched through the node's own count (no queries of ours in the measure).
  while (rig.node.removed.length < N) await sleep(20)
  while ((await notKilled(rig)) > 0) await sleep(20)
  const expiry = { timeMs: Number.NaN, cpuMs: (cpu() - c0) / N }
  const killed = await sandboxesInStates(rig.db, ['killed'])
  if (killed.length !== N) throw new Error(`${label}: ${killed.length} of ${N} expired`)
  if (rig.node.removed.length !== N)
    throw new Error(`${label}: node removed ${rig.node.removed.length}`)
  const late = killed.map((s) => s.killedAt! - deadlines.get(s.sandboxId)!)
  // The node's clock is the host's; the lifecycle clock may be the store's.
  const offset = engine.clock.now() - Date.now()
  const removed = rig.node.removed.map((r) => r.at + offset - deadlines.get(r.sandboxId)!)
  return {
    create,
    extend,
    expiry,
    lateMedianMs: median(late),
    lateP99Ms: pct(late, 99),
    lateMaxMs: Math.max(...late),
    removedMedianMs: median(removed),
    removedP99Ms: pct(removed, 99),
    removedMaxMs: Math.max(...removed),
  }
}

function table(sqlite: StoreFigures, postgres: StoreFigures): void {
  const row = (name: string, a: number, b: number, unit: string) =>
    console.log(
      `  ${name.padEnd(32)} ${a.toFixed(3).padStart(10)} ${b.toFixed(3).padStart(12)} ${unit.padEnd(4)} ${(b / a).toFixed(2).padStart(7)}x`,
    )
  console.log(
    `\nstore cost and expiry precision at ${N} sandboxes (deadlines over ${WINDOW_S} s, ${EXPIRY_CONCURRENCY} expiries at once)`,
  )
  console.log(
    `  ${''.padEnd(32)} ${'SQLite'.padStart(10)} ${'PostgreSQL'.padStart(12)}      ${'PG/SQLite'.padStart(8)}`,
  )
  for (const k of ['create', 'extend'] as const) {
    row(`${k}: rows per second`, 1000 / sqlite[k].timeMs, 1000 / postgres[k].timeMs, '/s')
    row(`${k}: wall per operation`, sqlite[k].timeMs, postgres[k].timeMs, 'ms')
    row(`${k}: CPU per operation`, sqlite[k].cpuMs, postgres[k].cpuMs, 'ms')
  }
  // An expiry's time is when it fires: its lateness, below.
  row('expiry: CPU per operation', sqlite.expiry.cpuMs, postgres.expiry.cpuMs, 'ms')
  row('expiry late: median', sqlite.lateMedianMs, postgres.lateMedianMs, 'ms')
  row('expiry late: p99', sqlite.lateP99Ms, postgres.lateP99Ms, 'ms')
  row('expiry late: max', sqlite.lateMaxMs, postgres.lateMaxMs, 'ms')
  row('removed from node late: median', sqlite.removedMedianMs, postgres.removedMedianMs, 'ms')
  row('removed from node late: p99', sqlite.removedP99Ms, postgres.removedP99Ms, 'ms')
  row('removed from node late: max', sqlite.removedMaxMs, postgres.removedMaxMs, 'ms')
}

function flat(prefix: string, f: StoreFigures): Figures {
  return {
    [`${prefix}CreateMs`]: f.create.timeMs,
    [`${prefix}CreateCpuMs`]: f.create.cpuMs,
    [`${prefix}ExtendMs`]: f.extend.timeMs,
    [`${prefix}ExtendCpuMs`]: f.extend.cpuMs,
    [`${prefix}ExpiryCpuMs`]: f.expiry.cpuMs,
    [`${prefix}LateMedianMs`]: f.lateMedianMs,
    [`${prefix}LateP99Ms`]: f.lateP99Ms,
    [`${prefix}LateMaxMs`]: f.lateMaxMs,
    [`${prefix}RemovedP99Ms`]: f.removedP99Ms,
  }
}

await runBenchmark('store', values.json, async () => {
  const dir = mkdtempSync('/tmp/warren-bench-store-')
  const server = await startPostgres({ durable: true })
  try {
    const sqliteRig = await startRig(`sqlite:${join(dir, 'warren.db')}`, N, EXPIRY_CONCURRENCY)
    const sqlite = await run('SQLite', sqliteRig, () => 0).finally(() => sqliteRig.close())
    const pgRig = await startRig(server.url, N, EXPIRY_CONCURRENCY)
    const postgres = await run('PostgreSQL', pgRig, () =>
      serverCpuMs(join(server.dir, 'data')),
    ).finally(() => pgRig.close())
    table(sqlite, postgres)
    return {
      sandboxes: N,
      expiryConcurrency: EXPIRY_CONCURRENCY,
      ...flat('sqlite', sqlite),
      ...flat('postgres', postgres),
      createCpuPostgresOverSqlite: postgres.create.cpuMs / sqlite.create.cpuMs,
      extendCpuPostgresOverSqlite: postgres.extend.cpuMs / sqlite.extend.cpuMs,
      expiryCpuPostgresOverSqlite: postgres.expiry.cpuMs / sqlite.expiry.cpuMs,
      lateP99PostgresOverSqlite: postgres.lateP99Ms / sqlite.lateP99Ms,
    }
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})
