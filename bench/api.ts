// SDK create + run, 50 concurrent creates, proxy vs direct vs nginx.
// Control plane and proxy, each figure beside a baseline measured in the same run:
//   - SDK Sandbox.create + first commands.run vs the runtime floor (raw runc run)
//   - 50 concurrent creates: throughput and p95
//   - requests/s and latency through edge + node proxy vs direct to the
//     sandbox's port, and vs nginx configured as the same reverse proxy;
//     Warren also with a new connection per request, over https, and the
//     node proxy alone (as a remote edge or a direct caller reaches it)
// Privileged; traffic only to loopback and the sandboxes' namespaces.
//     (Warren's edge and node proxy workers and nginx's worker_processes all
//     --workers, default one per core)
//   npm run bench -- api [--runs 20] [--concurrent 50] [--seconds 10] [--workers n] [--rounds 3] [--json]
import { availableParallelism } from 'node:os'
import { Sandbox } from 'e2b'
import { freePort } from '../tests/helpers/node-fixture.js'
import { startWarren } from '../tests/helpers/warren-fixture.js'
import { prepareFloor } from './lib/floor.js'
import { processGroup } from './lib/host.js'
import { httpSandbox, SERVER_PORT } from './lib/http-sandbox.js'
import { startNginx } from './lib/nginx.js'
import { ensurePackages } from './lib/packages.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, ms, pct } from './lib/stats.js'
import { medianOf, type WrkResult, wrkFor } from './lib/wrk.js'

const values = benchArgs({
  runs: { type: 'string', default: '20' },
  concurrent: { type: 'string', default: '50' },
  seconds: { type: 'string', default: '10' },
  // Warren's edge and node proxy workers and nginx's worker_processes alike.
  workers: { type: 'string', default: String(availableParallelism()) },
  // Turns of Warren's edge and nginx, alternated.
  rounds: { type: 'string', default: '3' },
})
const RUNS = Number(values.runs)
const CONCURRENT = Number(values.concurrent)
const SECONDS = Number(values.seconds)
const WORKERS = Number(values.workers)
const ROUNDS = Number(values.rounds)

const wrk = wrkFor(SECONDS)

async function main(): Promise<Figures> {
  ensurePackages(['wrk', 'nginx-light'])
  // Idle sandboxes use ~15 MB; let the node overcommit its 512 MB reservations for the burst.
  const warren = await startWarren({
    env: {
      WARREN_MEMORY_CAPACITY_MB: '60000',
      WARREN_WARM_NETWORK_SLOTS: '4',
      WARREN_PROXY_WORKERS: String(WORKERS),
      WARREN_NODE_PROXY_WORKERS: String(WORKERS),
    },
  })
  const floor = prepareFloor()
  const opts = warren.sdk
  try {
    // --- floor
    const floorRuns: number[] = []
    for (let i = 0; i < RUNS; i++) floorRuns.push((await floor.once()).runc)

    // --- SDK create + first command
    const createRun: number[] = []
    for (let i = 0; i < RUNS + 2; i++) {
      const t0 = performance.now()
      const sbx = await Sandbox.create(opts)
      await sbx.commands.run('true')
      if (i >= 2) createRun.push(performance.now() - t0)
      await sbx.kill()
    }

    // --- proxy throughput, before the concurrent creates: their kills'
    // teardowns run on in the background and would share the cores.
    const { sbx, address, host } = await httpSandbox(warren)
    const direct = wrk(`http://${address}:${SERVER_PORT}/`, {})
    // Warren's proxy (the `warren up` process and its proxy workers) and
    // nginx in turns, each figure the median of its runs: the load on a
    // shared machine drifts, and a single run of each can land in different weather.
    const warrenPids = () => processGroup(warren.pid()!, 'workers/worker.js')
    const nginxPort = await freePort()
    const nginx = startNginx(nginxPort, `${address}:${SERVER_PORT}`, WORKERS)
    const edgeRuns: WrkResult[] = []
    const nginxRuns: WrkResult[] = []
    // One connection, one request at a time: the latency a proxy adds with
    // no queueing (at 32 connections on 2 shared cores, p50 follows throughput).
    let nginxAlone: WrkResult
    try {
      for (let i = 0; i < ROUNDS; i++) {
        edgeRuns.push(wrk(`${warren.proxyUrl}/`, { Host: host }, warrenPids))
        nginxRuns.push(wrk(`http://127.0.0.1:${nginxPort}/`, { Host: host }, nginx.pids))
      }
      nginxAlone = wrk(`http://127.0.0.1:${nginxPort}/`, { Host: host }, undefined, 1)
    } finally {
      nginx.stop()
    }
    const edge = medianOf(edgeRuns)
    const viaNginx = medianOf(nginxRuns)
    // A new connection per request: what a per-connection cost (the edge's
    // TLS sniff of the first byte) would show in.
    const edgeFresh = wrk(`${warren.proxyUrl}/`, { Host: host, Connection: 'close' })
    // The same port over TLS (wrk sends the URL's host as SNI and Host;
    // `*.localhost` resolves through nss-myhostname, see scripts/setup.sh).
    const edgeTls = wrk(`https://${host}/`, {})
    const edgeTlsFresh = wrk(`https://${host}/`, { Connection: 'close' })
    // The node proxy alone, a direct caller (public traffic, no ingress rules).
    const nodeProxyPids = () => processGroup(warren.pid()!, 'nodeproxy/worker.js')
    const nodeProxy = wrk(
      `http://127.0.0.1:${warren.ports.nodeProxy}/`,
      { Host: host },
      nodeProxyPids,
    )
    const directAlone = wrk(`http://${address}:${SERVER_PORT}/`, {}, undefined, 1)
    const edgeAlone = wrk(`${warren.proxyUrl}/`, { Host: host }, undefined, 1)
    // The SDK's connection to the API sat idle through the wrk runs, about as
    // long as the server keeps one: a kill that meets its close is made again.
    await sbx.kill().catch(() => sbx.kill())

    // --- 50 concurrent creates
    const latencies: number[] = []
    const t0 = performance.now()
    const created = await Promise.all(
      Array.from({ length: CONCURRENT }, async () => {
        const s = performance.now()
        const sbx = await Sandbox.create(opts)
        latencies.push(performance.now() - s)
        return sbx
      }),
    )
    const wall = performance.now() - t0
    await Promise.all(created.map((s) => s.kill()))

    const floorMed = median(floorRuns)
    console.log('\nControl plane (sequential; SDK against warren up)')
    console.log('| measure | median | p95 | ÷ floor |')
    console.log('|---|---|---|---|')
    console.log(
      `| floor: raw \`runc run /bin/true\` | ${ms(floorMed)} | ${ms(pct(floorRuns, 95))} | 1.00× |`,
    )
    console.log(
      `| SDK Sandbox.create + first commands.run | ${ms(median(createRun))} | ${ms(pct(createRun, 95))} | ${(median(createRun) / floorMed).toFixed(2)}× |`,
    )
    console.log(
      `\n${CONCURRENT} concurrent creates: ${(wall / 1000).toFixed(2)} s wall, ${(CONCURRENT / (wall / 1000)).toFixed(1)} creates/s, per-create median ${ms(median(latencies))}, p95 ${ms(pct(latencies, 95))}`,
    )
    console.log(
      `\nProxy (wrk, 2 threads, 32 connections, ${SECONDS} s, tiny HTTP server in the sandbox; Warren's proxy workers: ${WORKERS}, nginx worker_processes: ${WORKERS}; Warren's edge and nginx: medians of ${ROUNDS} alternated runs)`,
    )
    console.log('| path | requests/s | p50 | p99 | rps ÷ direct | proxy CPU ms / 1000 req |')
    console.log('|---|---|---|---|---|---|')
    for (const [name, r] of [
      ['direct to the sandbox port', direct],
      ['edge proxy + node proxy (Warren)', edge],
      ['Warren, a new connection per request', edgeFresh],
      ['Warren over https (same port)', edgeTls],
      ['Warren over https, a new TLS connection per request', edgeTlsFresh],
      ['node proxy alone (Warren)', nodeProxy],
      ['nginx reverse proxy (baseline)', viaNginx],
    ] as const) {
      console.log(
        `| ${name} | ${r.rps.toFixed(0)} | ${ms(r.p50)} | ${ms(r.p99)} | ${(r.rps / direct.rps).toFixed(2)} | ${r.cpuMsPerK === undefined ? '' : r.cpuMsPerK.toFixed(0)} |`,
      )
    }
    console.log(
      `\nAdded latency at p50: Warren ${(edge.p50 - direct.p50).toFixed(2)} ms, nginx ${(viaNginx.p50 - direct.p50).toFixed(2)} ms; Warren/nginx throughput ${(edge.rps / viaNginx.rps).toFixed(2)}; Warren/nginx CPU per request ${((edge.cpuMsPerK ?? 0) / (viaNginx.cpuMsPerK ?? 1)).toFixed(1)}; node proxy alone/nginx throughput ${(nodeProxy.rps / viaNginx.rps).toFixed(2)}, added p50 ${(nodeProxy.p50 - direct.p50).toFixed(2)} ms (a busy machine shares its cores: the CPU per request is what the throughput of an idle one follows)`,
    )
    const roundRatios = edgeRuns.map((e, i) => e.rps / (nginxRuns[i] as WrkResult).rps)
    console.log(
      `Warren/nginx throughput by round: ${roundRatios.map((r) => r.toFixed(2)).join(', ')}`,
    )
    console.log(
      `Added latency at p50 over one connection (no queueing): Warren ${(edgeAlone.p50 - directAlone.p50).toFixed(2)} ms, nginx ${(nginxAlone.p50 - directAlone.p50).toFixed(2)} ms (direct ${directAlone.p50.toFixed(2)} ms)`,
    )
    return {
      floorMs: floorMed,
      sdkCreateRunMs: median(createRun),
      sdkCreateRunOverFloor: median(createRun) / floorMed,
      concurrentCreates: CONCURRENT,
      concurrentCreatesPerS: CONCURRENT / (wall / 1000),
      concurrentCreateP95Ms: pct(latencies, 95),
      directRps: direct.rps,
      edgeRps: edge.rps,
      nginxRps: viaNginx.rps,
      edgeOverDirectRps: edge.rps / direct.rps,
      nginxOverDirectRps: viaNginx.rps / direct.rps,
      edgeOverNginxRps: edge.rps / viaNginx.rps,
      edgeOverNginxRpsLowestRound: Math.min(...roundRatios),
      edgeOverNginxRpsHighestRound: Math.max(...roundRatios),
      edgeAddedP50Ms: edge.p50 - direct.p50,
      edgeAddedP50OneConnectionMs: edgeAlone.p50 - directAlone.p50,
      nginxAddedP50OneConnectionMs: nginxAlone.p50 - directAlone.p50,
      proxyWorkers: WORKERS,
      nginxWorkers: WORKERS,
      nginxAddedP50Ms: viaNginx.p50 - direct.p50,
      edgeCpuMsPer1000: edge.cpuMsPerK ?? Number.NaN,
      nginxCpuMsPer1000: viaNginx.cpuMsPerK ?? Number.NaN,
      edgeOverNginxCpu: (edge.cpuMsPerK ?? 0) / (viaNginx.cpuMsPerK ?? 1),
      nodeProxyRps: nodeProxy.rps,
      nodeProxyOverNginxRps: nodeProxy.rps / viaNginx.rps,
      nodeProxyAddedP50Ms: nodeProxy.p50 - direct.p50,
      nodeProxyCpuMsPer1000: nodeProxy.cpuMsPerK ?? Number.NaN,
      nodeProxyWorkers: WORKERS,
    }
  } finally {
    await floor.close()
    await warren.teardown()
  }
}

await runBenchmark('api', values.json, main)
