// Bursts of new connections into small servers: proxy vs direct, window vs none.
// Against a `warren up`, one sandbox runs `python3 -m http.server` (listen
// backlog 5) and a Node server (backlog 1024, a server that accepts quickly).
// A burst is BURST simultaneous GETs, each on a new connection; its total is
// the time to the last answer, p50/p99 over each request's time.
//   small server   the burst through the edge proxy, vs the same burst sent
//                  directly to the sandbox's address from the host (which
//                  overflows the accept queue: the kernel re-sends dropped
//                  SYNs after 1 s, 3 s…), and through the proxy right after
//                  the burst woke the paused sandbox (auto-resume)
//   fast server    the burst through the edge proxy vs direct, and the
//                  throughput of REQUESTS requests (new connection each, BURST
//                  at a time)
//   window vs none the forwarding engine (the proxies' own) in this process,
//                  dialling the sandbox with the node proxy's connect window
//                  and without one: the same bursts and throughput, as ratios
// Privileged (runc, netns, nft). Build first, then:
//   npm run bench -- burst [--runs 3] [--burst 100] [--requests 2000] [--json]
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ConnectWindows, createForwarder } from '@warren/shared'
import type { Sandbox } from 'e2b'
import { detail } from '../tests/helpers/api-client.js'
import { createRaw, handle, pause, waitForState } from '../tests/helpers/lifecycle.js'
import { startWarren, type WarrenFixture } from '../tests/helpers/warren-fixture.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, pct } from './lib/stats.js'

const values = benchArgs({
  runs: { type: 'string', default: '3' },
  burst: { type: 'string', default: '100' },
  requests: { type: 'string', default: '2000' },
})
const RUNS = Number(values.runs)
const BURST = Number(values.burst)
const REQUESTS = Number(values.requests)
const PY_PORT = 8000
const FAST_PORT = 8001

/** Where a request goes: an address and port, and the Host it names. */
interface Target {
  port: number
  address: string
  host: string
}

interface Burst {
  total: number
  latencies: number[]
  failed: number
}

/** Answers other than 200, by status (0: none), over the whole run: printed at the end. */
const otherStatuses = new Map<string, number>()
function noteStatus(label: string, status: number): void {
  if (status === 200) return
  const key = `${label}: ${status}`
  otherStatuses.set(key, (otherStatuses.get(key) ?? 0) + 1)
}

/** One GET on a connection of its own; resolves with the status (0: no answer). */
function get(t: Target): Promise<number> {
  return new Promise((resolve) => {
    const r = request(
      { host: t.address, port: t.port, path: '/', headers: { host: t.host }, agent: false },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
        res.on('error', () => resolve(0))
      },
    )
    r.on('error', () => resolve(0))
    r.setTimeout(60_000, () => r.destroy())
    r.end()
  })
}

async function burst(t: Target, label: string): Promise<Burst> {
  const t0 = performance.now()
  const latencies: number[] = []
  let failed = 0
  await Promise.all(
    Array.from({ length: BURST }, async () => {
      const status = await get(t)
      latencies.push(performance.now() - t0)
      noteStatus(label, status)
      if (status !== 200) failed++
    }),
  )
  return { total: performance.now() - t0, latencies, failed }
}

/** REQUESTS GETs, BURST at a time, each on a new connection: requests per second. */
async function throughput(t: Target, label: string): Promise<{ perS: number; failed: number }> {
  let next = 0
  let failed = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: BURST }, async () => {
      while (next++ < REQUESTS) {
        const status = await get(t)
        noteStatus(label, status)
        if (status !== 200) failed++
      }
    }),
  )
  return { perS: REQUESTS / ((performance.now() - t0) / 1000), failed }
}

/** Bursts of RUNS runs (after one unmeasured), pooled. */
async function bursts(label: string, t: Target, before?: () => Promise<void>) {
  const out = { totals: [] as number[], latencies: [] as number[], failed: 0 }
  // A burst after `before` (a pause) needs no warm-up: each is its own first.
  const runs = before ? RUNS : RUNS + 1
  for (let i = 0; i < runs; i++) {
    await before?.()
    const b = await burst(t, label)
    process.stderr.write(`\r${label}: run ${i + 1}/${runs} ${b.total.toFixed(0)} ms   `)
    if (i === 0 && !before) continue
    out.totals.push(b.total)
    out.latencies.push(...b.latencies)
    out.failed += b.failed
  }
  process.stderr.write('\n')
  return out
}

/**
 * The proxies' forwarding engine on loopback, sending everything to the
 * sandbox's address: with the node proxy's connect window, or without.
 */
async function engine(
  address: string,
  windowed: boolean,
): Promise<{ server: Server; port: number }> {
  const windows = new ConnectWindows()
  const forwarder = createForwarder(async (req) => {
    const port = Number(/^(\d+)-/.exec(req.headers.host ?? '')?.[1])
    return {
      target: {
        host: address,
        port,
        dialRetry: { retries: 5, initialDelayMs: 30 },
        ...(windowed ? { connectWindow: windows.of('bench', port) } : {}),
        unreachable: () => ({ status: 502, message: 'unreachable' }),
      },
    }
  })
  const server = createServer((req, res) => void forwarder.onRequest(req, res))
  server.on('close', () => {
    windows.close()
    void forwarder.close()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', 1024, r))
  return { server, port: (server.address() as AddressInfo).port }
}

const FAST_SERVER = `
require('http').createServer((req, res) => { req.resume(); res.end('ok\\n') })
  .listen(${FAST_PORT}, '0.0.0.0', 1024)
`

async function startServers(sbx: Sandbox): Promise<void> {
  await sbx.files.write('/tmp/www/index.html', '<p>burst</p>\n')
  await sbx.commands.run(`python3 -m http.server ${PY_PORT} --bind 0.0.0.0`, {
    background: true,
    timeoutMs: 0,
    cwd: '/tmp/www',
  })
  await sbx.files.write('/tmp/fast.js', FAST_SERVER)
  await sbx.commands.run('/opt/warren/bin/node /tmp/fast.js', { background: true, timeoutMs: 0 })
  for (const port of [PY_PORT, FAST_PORT]) {
    await sbx.commands.run(
      `for i in $(seq 100); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${port}/')" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
    )
  }
}

const f = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : '-')
const r = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '-')

type Pooled = Awaited<ReturnType<typeof bursts>>

function row(name: string, b: Pooled) {
  return {
    burst: name,
    'total (median)': f(median(b.totals)),
    'total (max)': f(Math.max(...b.totals)),
    p50: f(median(b.latencies)),
    p99: f(pct(b.latencies, 99)),
    'not 200': b.failed,
  }
}

async function main(): Promise<Figures> {
  let w: WarrenFixture | undefined
  const servers: Server[] = []
  try {
    w = await startWarren()
    const c = await createRaw(w, {
      timeout: 3600,
      metadata: { bench: 'burst' },
      lifecycle: { onTimeout: 'pause', autoResume: true },
    })
    const sbx = handle(w, c)
    await startServers(sbx)
    const address = (await sbx.commands.run('hostname -I')).stdout.trim().split(/\s+/)[0]!
    const proxy = (port: number): Target => ({
      address: '127.0.0.1',
      port: w!.ports.proxy,
      host: `${port}-${sbx.sandboxId}.localhost:${w!.ports.proxy}`,
    })
    const direct = (port: number): Target => ({ address, port, host: `${address}:${port}` })
    const windowed = await engine(address, true)
    const plain = await engine(address, false)
    servers.push(windowed.server, plain.server)
    const viaEngine = (e: { port: number }, port: number): Target => ({
      address: '127.0.0.1',
      port: e.port,
      host: `${port}-bench.localhost`,
    })

    const fw = w
    const small = {
      proxy: await bursts('small server, proxy', proxy(PY_PORT)),
      direct: await bursts('small server, direct', direct(PY_PORT)),
      windowed: await bursts('small server, engine with window', viaEngine(windowed, PY_PORT)),
      plain: await bursts('small server, engine without window', viaEngine(plain, PY_PORT)),
    }
    const fast = {
      proxy: await bursts('fast server, proxy', proxy(FAST_PORT)),
      direct: await bursts('fast server, direct', direct(FAST_PORT)),
      windowed: await bursts('fast server, engine with window', viaEngine(windowed, FAST_PORT)),
      plain: await bursts('fast server, engine without window', viaEngine(plain, FAST_PORT)),
    }
    const tput = {
      proxy: await throughput(proxy(FAST_PORT), 'throughput, proxy'),
      direct: await throughput(direct(FAST_PORT), 'throughput, direct'),
      windowed: await throughput(viaEngine(windowed, FAST_PORT), 'throughput, window'),
      plain: await throughput(viaEngine(plain, FAST_PORT), 'throughput, no window'),
    }
    const tputWindowed2 = await throughput(viaEngine(windowed, FAST_PORT), 'throughput, window')
    const tputPlain2 = await throughput(viaEngine(plain, FAST_PORT), 'throughput, no window')
    // Last: a resume may give the sandbox another address, which the direct paths dial.
    const resumed = await bursts(
      'small server, proxy, woken by the burst',
      proxy(PY_PORT),
      async () => {
        if ((await pause(fw, sbx.sandboxId)) !== 204) throw new Error('pause failed')
        await waitForState(fw, sbx.sandboxId, 'paused', 60_000)
      },
    )
    const resumedFrom = (await detail(w, sbx.sandboxId)).resumedFrom
    const afterResume = await bursts('fast server, proxy, after the resumes', proxy(FAST_PORT))

    console.log(
      `\n${BURST} simultaneous GETs, each on a new connection; ${RUNS} runs each (resumes from ${resumedFrom})`,
    )
    console.table([
      row('small: proxy', small.proxy),
      row('small: direct (baseline)', small.direct),
      row('small: proxy, woken by it', resumed),
      row('small: engine + window', small.windowed),
      row('small: engine, no window', small.plain),
      row('fast: proxy', fast.proxy),
      row('fast: proxy, after the resumes', afterResume),
      row('fast: direct', fast.direct),
      row('fast: engine + window', fast.windowed),
      row('fast: engine, no window', fast.plain),
    ])
    const smallOverDirect = median(small.proxy.totals) / median(small.direct.totals)
    const smallWindowOverPlain = median(small.windowed.totals) / median(small.plain.totals)
    const fastOverDirect = median(fast.proxy.totals) / median(fast.direct.totals)
    const fastWindowOverPlain = median(fast.windowed.totals) / median(fast.plain.totals)
    const windowedPerS = (tput.windowed.perS + tputWindowed2.perS) / 2
    const plainPerS = (tput.plain.perS + tputPlain2.perS) / 2
    console.log('\nRatios (burst total, median):')
    console.table([
      { what: 'small server: proxy / direct', ratio: r(smallOverDirect) },
      { what: 'small server: engine with / without window', ratio: r(smallWindowOverPlain) },
      { what: 'fast server: proxy / direct', ratio: r(fastOverDirect) },
      { what: 'fast server: engine with / without window', ratio: r(fastWindowOverPlain) },
    ])
    console.log(
      `\nFast server throughput (${REQUESTS} GETs, new connection each, ${BURST} at a time):`,
    )
    console.table([
      { path: 'proxy', 'req/s': tput.proxy.perS.toFixed(0), 'not 200': tput.proxy.failed },
      { path: 'direct', 'req/s': tput.direct.perS.toFixed(0), 'not 200': tput.direct.failed },
      {
        path: 'engine + window (2 runs)',
        'req/s': windowedPerS.toFixed(0),
        'not 200': tput.windowed.failed + tputWindowed2.failed,
      },
      {
        path: 'engine, no window (2 runs)',
        'req/s': plainPerS.toFixed(0),
        'not 200': tput.plain.failed + tputPlain2.failed,
      },
    ])
    if (otherStatuses.size) {
      console.log('\nAnswers other than 200 (0: no answer):')
      console.table(Object.fromEntries(otherStatuses))
    }
    console.log(
      `window / no window throughput: ${r(windowedPerS / plainPerS)}; proxy / direct: ${r(tput.proxy.perS / tput.direct.perS)}`,
    )
    return {
      smallProxyTotalMs: median(small.proxy.totals),
      smallProxyP50Ms: median(small.proxy.latencies),
      smallProxyP99Ms: pct(small.proxy.latencies, 99),
      smallProxyNot200: small.proxy.failed,
      smallDirectTotalMs: median(small.direct.totals),
      smallDirectP50Ms: median(small.direct.latencies),
      smallDirectP99Ms: pct(small.direct.latencies, 99),
      smallResumedTotalMs: median(resumed.totals),
      smallResumedP99Ms: pct(resumed.latencies, 99),
      smallResumedNot200: resumed.failed,
      smallProxyOverDirect: smallOverDirect,
      smallWindowOverNoWindow: smallWindowOverPlain,
      fastProxyTotalMs: median(fast.proxy.totals),
      fastDirectTotalMs: median(fast.direct.totals),
      fastProxyOverDirect: fastOverDirect,
      fastWindowOverNoWindow: fastWindowOverPlain,
      fastProxyPerS: tput.proxy.perS,
      fastDirectPerS: tput.direct.perS,
      fastWindowPerS: windowedPerS,
      fastNoWindowPerS: plainPerS,
      fastWindowOverNoWindowPerS: windowedPerS / plainPerS,
    }
  } finally {
    for (const s of servers) {
      s.closeAllConnections()
      await new Promise((res) => s.close(res))
    }
    await w?.teardown()
  }
}

await runBenchmark('burst', values.json, main)
