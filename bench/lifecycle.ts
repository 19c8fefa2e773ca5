// Pause, hot/cold resume, auto-resume first byte, keepalive calls.
// Against a `warren up` of its own, each figure next to a floor measured in
// the same run on the same kind of sandbox:
//   pause (POST /pause → 204)            vs  raw `runc pause` of a container
//   hot resume (connect → 201)           vs  raw `runc resume` (freezer thaw)
//   cold resume (connect → 201, files)   vs  create (Sandbox.create)
//   first byte of a request that wakes   vs  the same request to a running sandbox
//   keepalive calls per 10 000 requests  vs  one call per request (no throttle)
// Privileged (runc, netns, nft); traffic only to loopback and Warren's
// sandboxes. Build first, then:
//   npm run bench -- lifecycle [--runs 20] [--requests 10000] [--rate 1000] [--json]
import { execFileSync } from 'node:child_process'
import { Agent, request } from 'node:http'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { Sandbox } from 'e2b'
import { api } from '../tests/helpers/api-client.js'
import { counter, createRaw, handle, startServer } from '../tests/helpers/lifecycle.js'
import { sandboxHost } from '../tests/helpers/proxy-client.js'
import { startWarren, type WarrenFixture } from '../tests/helpers/warren-fixture.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, pct } from './lib/stats.js'

const values = benchArgs({
  runs: { type: 'string', default: '20' },
  requests: { type: 'string', default: '10000' },
  /** Requests per second for the keepalive measure; 0: as fast as they go. */
  rate: { type: 'string', default: '1000' },
})
const RUNS = Number(values.runs)
const REQUESTS = Number(values.requests)
const RATE = Number(values.rate)
const WARMUP = 2
const PORT = 8000

const now = () => performance.now()

const fmt = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : '-')

/** Runs `fn` WARMUP + RUNS times and keeps the last RUNS results. */
async function repeat<T>(label: string, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = []
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const r = await fn(i)
    if (i >= WARMUP) out.push(r)
    process.stderr.write(`\r${label}: ${i + 1}/${WARMUP + RUNS}   `)
  }
  process.stderr.write('\n')
  return out
}

async function must<R extends { status: number; text: string }>(res: Promise<R>, status: number) {
  const r = await res
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${r.text}`)
  return r
}

function runc(w: WarrenFixture, ...args: string[]): void {
  execFileSync('runc', ['--root', join(w.dataDir, 'runc'), ...args], { stdio: 'ignore' })
}

/** Time to the response's first byte (status line) of one fresh-connection GET through the proxy. */
function firstByte(w: WarrenFixture, id: string): Promise<{ ms: number; status: number }> {
  return new Promise((resolve, reject) => {
    const t0 = now()
    const r = request(
      {
        host: '127.0.0.1',
        port: w.ports.proxy,
        path: '/',
        headers: { host: sandboxHost(w, id, PORT) },
        agent: false,
      },
      (res) => {
        const ms = now() - t0
        res.resume()
        res.on('end', () => resolve({ ms, status: res.statusCode ?? 0 }))
      },
    )
    r.on('error', reject)
    r.end()
  })
}

interface Row {
  /** Names the row's figures in the JSON summary. */
  key: string
  what: string
  values: number[]
  floorWhat: string
  floor: number[]
}

// ------------------------------------------------------------ pause and hot resume

async function pauseAndHotResume(w: WarrenFixture): Promise<Row[]> {
  const sbx = await Sandbox.create({ ...w.sdk, timeoutMs: 600_000, metadata: { bench: 'pause' } })
  const id = sbx.sandboxId
  const container = `${w.prefix}-${id}`
  try {
    await startServer(sbx, PORT)
    const samples = await repeat('pause / hot resume', async () => {
      // Floors first, on the same container: the freezer alone, both ways.
      let t = now()
      runc(w, 'pause', container)
      const rawPause = now() - t
      t = now()
      runc(w, 'resume', container)
      const rawResume = now() - t
      t = now()
      await must(api(w, 'POST', `/sandboxes/${id}/pause`, { json: {} }), 204)
      const pause = now() - t
      t = now()
      const res = await must(api(w, 'POST', `/v2/sandboxes/${id}/connect`, { json: {} }), 201)
      const resume = now() - t
      if ((res.body as { resumedFrom?: string }).resumedFrom !== 'memory')
        throw new Error(`expected a hot resume: ${res.text}`)
      return { rawPause, rawResume, pause, resume }
    })
    return [
      {
        key: 'pause',
        what: 'pause (POST /pause → 204)',
        values: samples.map((s) => s.pause),
        floorWhat: 'runc pause',
        floor: samples.map((s) => s.rawPause),
      },
      {
        key: 'hotResume',
        what: 'hot resume (connect → 201)',
        values: samples.map((s) => s.resume),
        floorWhat: 'runc resume (thaw)',
        floor: samples.map((s) => s.rawResume),
      },
    ]
  } finally {
    await sbx.kill().catch(() => {})
  }
}

// ------------------------------------------------------------ cold resume vs create

async function coldResume(w: WarrenFixture): Promise<Row> {
  const samples = await repeat('cold resume / create', async () => {
    let t = now()
    const sbx = await Sandbox.create({ ...w.sdk, timeoutMs: 600_000, metadata: { bench: 'cold' } })
    const create = now() - t
    try {
      await sbx.files.write('/home/user/kept.txt', 'kept')
      await must(
        api(w, 'POST', `/sandboxes/${sbx.sandboxId}/pause`, { json: { memory: false } }),
        204,
      )
      t = now()
      const res = await must(
        api(w, 'POST', `/v2/sandboxes/${sbx.sandboxId}/connect`, { json: {} }),
        201,
      )
      const cold = now() - t
      if ((res.body as { resumedFrom?: string }).resumedFrom !== 'files')
        throw new Error(`expected a cold resume: ${res.text}`)
      return { create, cold }
    } finally {
      await sbx.kill().catch(() => {})
    }
  })
  return {
    key: 'coldResume',
    what: 'cold resume (connect → 201, files)',
    values: samples.map((s) => s.cold),
    floorWhat: 'create (Sandbox.create)',
    floor: samples.map((s) => s.create),
  }
}

// ------------------------------------------------------------ first byte through the proxy

async function wakeOnTraffic(w: WarrenFixture): Promise<Row> {
  const c = await createRaw(w, {
    timeout: 600,
    metadata: { bench: 'wake' },
    lifecycle: { onTimeout: 'pause', autoResume: true },
  })
  try {
    await startServer(handle(w, c), PORT)
    const samples = await repeat('first byte: wake vs running', async () => {
      const running = await firstByte(w, c.sandboxID)
      await must(api(w, 'POST', `/sandboxes/${c.sandboxID}/pause`, { json: {} }), 204)
      const wake = await firstByte(w, c.sandboxID)
      if (running.status !== 200 || wake.status !== 200)
        throw new Error(`statuses ${running.status}, ${wake.status}`)
      return { running: running.ms, wake: wake.ms }
    })
    return {
      key: 'wakeFirstByte',
      what: 'first byte, request that auto-resumes',
      values: samples.map((s) => s.wake),
      floorWhat: 'same request, running',
      floor: samples.map((s) => s.running),
    }
  } finally {
    await Sandbox.kill(c.sandboxID, w.sdk).catch(() => {})
  }
}

// ------------------------------------------------------------ keepalive calls

async function keepaliveCalls(
  w: WarrenFixture,
): Promise<{ requests: number; calls: number; seconds: number }> {
  const c = await createRaw(w, {
    timeout: 600,
    metadata: { bench: 'keepalive' },
    lifecycle: { keepalive: { traffic: { enabled: true } } },
  })
  const agent = new Agent({ keepAlive: true, maxSockets: 16 })
  try {
    await startServer(handle(w, c), PORT)
    const before = await counter(w, 'warren_keepalive_calls_total')
    const t0 = now()
    let sent = 0
    const one = () =>
      new Promise<void>((resolve, reject) => {
        const r = request(
          {
            host: '127.0.0.1',
            port: w.ports.proxy,
            path: '/',
            headers: { host: sandboxHost(w, c.sandboxID, PORT) },
            agent,
          },
          (res) => {
            res.resume()
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
            )
          },
        )
        r.on('error', reject)
        r.end()
      })
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (sent < REQUESTS) {
          const due = t0 + (sent++ / RATE) * 1000
          if (RATE > 0 && due > now()) await new Promise((r) => setTimeout(r, due - now()))
          await one()
        }
      }),
    )
    const seconds = (now() - t0) / 1000
    // The reporter's trailing call lands up to one interval after the last request.
    await new Promise((r) => setTimeout(r, 1500))
    const calls = (await counter(w, 'warren_keepalive_calls_total')) - before
    return { requests: sent, calls, seconds }
  } finally {
    agent.destroy()
    await Sandbox.kill(c.sandboxID, w.sdk).catch(() => {})
  }
}

// ------------------------------------------------------------ main

async function main(): Promise<Figures> {
  console.log(
    `lifecycle benchmark: ${RUNS} runs (+${WARMUP} warm-up) each; ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  const w = await startWarren()
  const stop = () => {
    void w.teardown().finally(() => process.exit(130))
  }
  process.once('SIGINT', stop)
  try {
    const rows = [...(await pauseAndHotResume(w)), await coldResume(w), await wakeOnTraffic(w)]
    const ka = await keepaliveCalls(w)

    const table = rows.map((r) => {
      const m = median(r.values)
      const f = median(r.floor)
      return {
        measure: r.what,
        median: fmt(m),
        p95: fmt(pct(r.values, 95)),
        floor: r.floorWhat,
        'floor median': fmt(f),
        'floor p95': fmt(pct(r.floor, 95)),
        'median / floor': `${(m / f).toFixed(2)}×`,
      }
    })
    console.log()
    console.table(table)
    const per10k = (ka.calls / ka.requests) * 10_000
    console.log(
      `keepalive: ${ka.requests} proxied requests in ${ka.seconds.toFixed(1)} s ` +
        `(${Math.round(ka.requests / ka.seconds)}/s) → ${ka.calls} KeepAliveSandbox calls ` +
        `= ${per10k.toFixed(1)} per 10 000 requests (unthrottled: 10 000; bound: one per ` +
        `interval, ~${Math.ceil(ka.seconds) + 1} here)`,
    )
    const figures: Figures = {}
    for (const r of rows) {
      figures[`${r.key}Ms`] = median(r.values)
      figures[`${r.key}FloorMs`] = median(r.floor)
      figures[`${r.key}OverFloor`] = median(r.values) / median(r.floor)
    }
    figures.keepaliveRequestsPerS = ka.requests / ka.seconds
    figures.keepaliveCallsPer10kRequests = per10k
    return figures
  } finally {
    process.off('SIGINT', stop)
    await w.teardown()
  }
}

await runBenchmark('lifecycle', values.json, main)
