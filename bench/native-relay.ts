// What a native data plane would carry: a per-request relay in C on Node workers' own loops, against nginx and Warren's edge.
// Warren's edge relays each request in JavaScript at ~2.5× nginx's CPU per
// request (`bench api`, and docs/architecture.md's Known gaps). This measures
// the way past it proposed there: the per-request loop in C
// (bench/native-relay/relay.c, built here with node-gyp) on the libuv loops
// of node:cluster workers as the edge's, so the process and worker count are
// the edge's own: each head parsed, hop-by-hop headers dropped, one Host
// checked, a request id and X-Forwarded-For added, the answer framed. A
// prototype with no routing, not Warren's proxy. The edge, nginx and the
// native relay take turns on the same sandbox server, with the same workers
// count; each figure is the median of its rounds.
// Privileged; traffic only to loopback and the sandbox's namespace.
//   npm run bench -- native-relay [--seconds 10] [--workers n] [--rounds 3] [--json]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { freePort } from '../tests/helpers/node-fixture.js'
import { startWarren } from '../tests/helpers/warren-fixture.js'
import { processGroup } from './lib/host.js'
import { httpSandbox, SERVER_PORT } from './lib/http-sandbox.js'
import { startNginx } from './lib/nginx.js'
import { ensurePackages } from './lib/packages.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { medianOf, type WrkResult, wrkFor } from './lib/wrk.js'

const values = benchArgs({
  seconds: { type: 'string', default: '10' },
  workers: { type: 'string', default: String(availableParallelism()) },
  rounds: { type: 'string', default: '3' },
})
const WORKERS = Number(values.workers)
const ROUNDS = Number(values.rounds)
const wrk = wrkFor(Number(values.seconds))

const DIR = join(import.meta.dirname, 'native-relay')
const START_MS = 15_000

/** Builds the relay addon (node-gyp against this Node's headers). */
function build(): void {
  execFileSync(
    join(import.meta.dirname, '../node_modules/.bin/node-gyp'),
    ['rebuild', '--silent'],
    {
      cwd: DIR,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
}

/** The native relay's primary and workers, listening once every worker does. */
async function startRelay(
  port: number,
  upstream: string,
): Promise<{ pids(): number[]; stop(): void }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(DIR, 'server.mjs'), String(port), upstream, String(SERVER_PORT), String(WORKERS)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  // The primary and its workers (which would exit on their own once it is gone).
  const stop = () => {
    for (const pid of processGroup(child.pid!)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the native relay did not listen in time')),
        START_MS,
      )
      const exited = (code: number | null) =>
        reject(new Error(`the native relay exited (${code}) before it listened`))
      child.once('exit', exited)
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line !== 'listening') return
        clearTimeout(timer)
        child.off('exit', exited)
        resolve()
      })
    })
  } catch (err) {
    stop()
    throw err
  }
  return { pids: () => processGroup(child.pid!), stop }
}

async function main(): Promise<Figures> {
  ensurePackages(['wrk', 'nginx-light', 'g++', 'make'])
  build()
  const warren = await startWarren({
    env: {
      WARREN_PROXY_WORKERS: String(WORKERS),
      WARREN_NODE_PROXY_WORKERS: String(WORKERS),
    },
  })
  try {
    const { sbx, address, host } = await httpSandbox(warren)
    const nginxPort = await freePort()
    const nginx = startNginx(nginxPort, `${address}:${SERVER_PORT}`, WORKERS)
    const relayPort = await freePort()
    const relay = await startRelay(relayPort, address).catch((err) => {
      nginx.stop()
      throw err
    })
    const runs: Record<'edge' | 'nginx' | 'native', WrkResult[]> = {
      edge: [],
      nginx: [],
      native: [],
    }
    try {
      const edgePids = () => processGroup(warren.pid()!, 'workers/worker.js')
      for (let i = 0; i < ROUNDS; i++) {
        runs.edge.push(wrk(`${warren.proxyUrl}/`, { Host: host }, edgePids))
        runs.nginx.push(wrk(`http://127.0.0.1:${nginxPort}/`, { Host: host }, nginx.pids))
        runs.native.push(wrk(`http://127.0.0.1:${relayPort}/`, { Host: host }, relay.pids))
      }
    } finally {
      relay.stop()
      nginx.stop()
      // The SDK's connection to the API sat idle through the runs, about as
      // long as the server keeps one: a kill that meets its close is made again.
      await sbx.kill().catch(() => sbx.kill())
    }
    const edge = medianOf(runs.edge)
    const viaNginx = medianOf(runs.nginx)
    const native = medianOf(runs.native)
    const byRound = (of: WrkResult[]) =>
      of.map((r, i) => (r.rps / runs.nginx[i]!.rps).toFixed(2)).join(', ')
    console.log(
      `\nProxies to one sandbox server (wrk, 2 threads, 32 connections; ${WORKERS} workers each; medians of ${ROUNDS} alternated rounds)`,
    )
    console.log('| proxy | requests/s | p50 | p99 | CPU µs / request | ÷ nginx (each round) |')
    console.log('|---|---|---|---|---|---|')
    for (const [name, r, rounds] of [
      ["Warren's edge (JavaScript relay)", edge, runs.edge],
      ['nginx', viaNginx, runs.nginx],
      ['native relay on Node workers (prototype)', native, runs.native],
    ] as const) {
      console.log(
        `| ${name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms | ${r.cpuMsPerK?.toFixed(1)} | ${(r.rps / viaNginx.rps).toFixed(2)}× (${byRound(rounds)}) |`,
      )
    }
    return {
      edgeRps: edge.rps,
      nginxRps: viaNginx.rps,
      nativeRps: native.rps,
      edgeOverNginxRps: edge.rps / viaNginx.rps,
      nativeOverNginxRps: native.rps / viaNginx.rps,
      edgeCpuUsPerRequest: edge.cpuMsPerK ?? Number.NaN,
      nginxCpuUsPerRequest: viaNginx.cpuMsPerK ?? Number.NaN,
      nativeCpuUsPerRequest: native.cpuMsPerK ?? Number.NaN,
    }
  } finally {
    await warren.teardown()
  }
}

await runBenchmark('native-relay', Boolean(values.json), main)
