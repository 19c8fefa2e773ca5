// First byte of a request that auto-resumes through a remote edge vs through the all-in-one.
// Two deployments in one run, samples taken in turn: a `warren up` (its edge
// and node in the API's process) and a control plane (`warren api`, TLS on
// its internal port) with a remote cluster (`warren cluster add`: its own
// node and edge proxy, processes of their own). In each, a paused
// auto-resume sandbox is woken by one plain request to a user port; the
// figure is the time to that request's first byte, next to the same request
// to the running sandbox. Both on PostgreSQL by default (--store sqlite runs
// the all-in-one on SQLite), so what differs is the remote path: edge →
// ResumeSandbox over TLS → node, and the edge → node proxy hop.
// Privileged (runc, netns, nft); traffic only to loopback and the sandboxes.
//   npm run bench -- remote-edge [--runs 20] [--store postgres|sqlite] [--json]
import { request } from 'node:http'
import { api } from '../tests/helpers/api-client.js'
import {
  type CreatedSandbox,
  createRaw,
  handle,
  pause,
  startServer,
} from '../tests/helpers/lifecycle.js'
import { sandboxHost } from '../tests/helpers/proxy-client.js'
import { type ControlPlane, startControlPlane } from '../tests/helpers/remote-clusters.js'
import { startWarren, type WarrenFixture } from '../tests/helpers/warren-fixture.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, ms, pct } from './lib/stats.js'

const values = benchArgs({
  runs: { type: 'string', default: '20' },
  store: { type: 'string', default: 'postgres' },
})
const RUNS = Number(values.runs)
const WARMUP = 2
const PORT = 8000

/** Time to the first byte of one GET / to PORT of a sandbox through an edge (a new connection). */
function firstByte(edgePort: number, id: string): Promise<{ ms: number; status: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const r = request(
      {
        host: '127.0.0.1',
        port: edgePort,
        path: '/',
        headers: { host: sandboxHost({ ports: { proxy: edgePort } }, id, PORT) },
        agent: false,
      },
      (res) => {
        const took = performance.now() - t0
        res.resume()
        res.on('end', () => resolve({ ms: took, status: res.statusCode ?? 0 }))
      },
    )
    r.on('error', reject)
    r.end()
  })
}

interface Target {
  name: string
  apiTarget: { apiUrl: string; apiKey: string }
  edgePort: number
  sandbox: CreatedSandbox
}

/** One sample: the request to the running sandbox, then a pause, then the request that wakes it. */
async function sample(t: Target): Promise<{ running: number; wake: number }> {
  const running = await firstByte(t.edgePort, t.sandbox.sandboxID)
  const paused = await pause(t.apiTarget, t.sandbox.sandboxID)
  if (paused !== 204) throw new Error(`${t.name}: pause answered ${paused}`)
  const wake = await firstByte(t.edgePort, t.sandbox.sandboxID)
  if (running.status !== 200 || wake.status !== 200)
    throw new Error(`${t.name}: statuses ${running.status}, ${wake.status}`)
  return { running: running.ms, wake: wake.ms }
}

const body = { timeout: 900, lifecycle: { onTimeout: 'pause', autoResume: true } }

async function allInOne(w: WarrenFixture): Promise<Target> {
  const sandbox = await createRaw(w, { ...body, metadata: { bench: 'remote-edge' } })
  await startServer(handle(w, sandbox), PORT)
  return { name: 'all-in-one', apiTarget: w, edgePort: w.ports.proxy, sandbox }
}

async function remote(cp: ControlPlane): Promise<Target> {
  const cluster = cp.clusters.edge!
  const res = await api(cp, 'POST', '/v2/sandboxes', {
    json: { templateID: 'base', cluster: 'edge', metadata: { bench: 'remote-edge' }, ...body },
  })
  if (res.status !== 201) throw new Error(`create in the remote cluster: ${res.status} ${res.text}`)
  const sandbox = res.body as CreatedSandbox
  await startServer(handle(cluster, sandbox), PORT)
  return { name: 'remote edge', apiTarget: cp, edgePort: cluster.setup.ports.proxy, sandbox }
}

await runBenchmark('remote-edge', values.json, async (): Promise<Figures> => {
  if (values.store === 'postgres') process.env.WARREN_TEST_DATABASE = 'postgres'
  else if (values.store !== 'sqlite') throw new Error('--store is postgres or sqlite')
  process.stderr.write('starting warren up and a control plane with a remote cluster…\n')
  const [w, cp] = await Promise.all([startWarren(), startControlPlane(['edge'])])
  try {
    const targets = [await allInOne(w), await remote(cp)]
    const samples = new Map(
      targets.map((t) => [t.name, [] as Array<{ running: number; wake: number }>]),
    )
    for (let i = 0; i < WARMUP + RUNS; i++) {
      // In turn, so that whatever else the machine does falls on both alike.
      for (const t of targets) {
        const s = await sample(t)
        if (i >= WARMUP) samples.get(t.name)!.push(s)
      }
      process.stderr.write(`\rsamples: ${i + 1}/${WARMUP + RUNS}   `)
    }
    process.stderr.write('\n')
    console.log(`\nfirst byte of GET / on a user port, ${RUNS} samples each (${values.store})`)
    console.log('| path | wakes (p50) | wakes (p95) | running (p50) | running (p95) |')
    console.log('|---|---|---|---|---|')
    const figures: Record<string, { wake: number[]; running: number[] }> = {}
    for (const t of targets) {
      const s = samples.get(t.name)!
      const wake = s.map((x) => x.wake)
      const running = s.map((x) => x.running)
      figures[t.name] = { wake, running }
      console.log(
        `| ${t.name} | ${ms(median(wake))} | ${ms(pct(wake, 95))} | ${ms(median(running))} | ${ms(pct(running, 95))} |`,
      )
    }
    const local = figures['all-in-one']!
    const far = figures['remote edge']!
    const wakeRatio = median(far.wake) / median(local.wake)
    const runningRatio = median(far.running) / median(local.running)
    console.log(`\nwaking first byte, remote edge / all-in-one: ${wakeRatio.toFixed(2)}×`)
    console.log(`running first byte, remote edge / all-in-one: ${runningRatio.toFixed(2)}×`)
    return {
      allInOneWakeFirstByteMs: median(local.wake),
      remoteWakeFirstByteMs: median(far.wake),
      remoteOverAllInOneWake: wakeRatio,
      allInOneRunningFirstByteMs: median(local.running),
      remoteRunningFirstByteMs: median(far.running),
      remoteOverAllInOneRunning: runningRatio,
    }
  } finally {
    await Promise.allSettled([w.teardown(), cp.teardown(false)])
  }
})
