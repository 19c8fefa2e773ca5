// Rule updates to enforcement, egress proxy vs direct.
// Against a `warren up` and a fake internet of its own
// (tests/helpers/internet.ts: namespaces holding TEST-NET hosts; nothing
// leaves this machine):
//   rule updates   PUT /network latency, and when the new rules take effect
//                  (a prober in the sandbox connects in a tight loop and logs
//                  the moment its outcome flips), with 10 and 1000 rules
//   egress proxy   connection setup and time to the last byte of small HTTP
//                  and HTTPS requests, and the throughput of a large download,
//                  through the egress proxy (domain rule) vs direct to the same
//                  server (address rule), as ratios; the sandbox's link has
//                  Warren's packet size (WARREN_SANDBOX_GSO_MAX_SIZE), the fake
//                  internet's keeps the kernel's 64 KiB, as a real NIC's would
// Privileged (runc, netns, nft). Build first, then:
//   npm run bench -- network [--runs 20] [--requests 200] [--mib 256] [--downloads 5] [--egress-only] [--copy] [--json]
// --egress-only skips the rule updates (their figures are then absent);
// --copy runs the egress proxy with WARREN_EGRESS_KERNEL_CARRY=false.
import { cpus, loadavg } from 'node:os'
import { Sandbox } from 'e2b'
import { api } from '../tests/helpers/api-client.js'
import { DNS_IP, HOSTS, type Internet, startInternet } from '../tests/helpers/internet.js'
import { startWarren, type WarrenFixture } from '../tests/helpers/warren-fixture.js'
import { prepare } from '../tests/network/probe.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, pct } from './lib/stats.js'

const values = benchArgs({
  runs: { type: 'string', default: '20' },
  requests: { type: 'string', default: '200' },
  mib: { type: 'string', default: '256' },
  downloads: { type: 'string', default: '5' },
  'egress-only': { type: 'boolean', default: false },
  copy: { type: 'boolean', default: false },
})
const RUNS = Number(values.runs)
const REQUESTS = Number(values.requests)
const MIB = Number(values.mib)
const DOWNLOADS = Number(values.downloads)

const p95 = (xs: number[]) => pct(xs, 95)
const msf = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)} ms` : '-')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function run(sbx: Sandbox, cmd: string): Promise<string> {
  return (await sbx.commands.run(cmd, { timeoutMs: 600_000 })).stdout
}

// ------------------------------------------------------------ rule updates

/**
 * Connects to host:port in a loop (1 ms apart) and logs `<time> <outcome>`
 * whenever the outcome changes: `open` or the errno's name.
 */
const PROBER = `import errno, socket, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = open(path, 'w', buffering=1)
last = None
while True:
    try:
        s = socket.create_connection((host, port), 0.5)
        s.close()
        now = 'open'
    except OSError as e:
        now = errno.errorcode.get(e.errno, str(e.errno)) if e.errno else 'timeout'
    if now != last:
        out.write('%.6f %s\\n' % (time.time(), now))
        last = now
    time.sleep(0.001)
`

interface UpdateResult {
  rules: number
  put: number[]
  /** From the PUT's start to the first probe that saw the new outcome. */
  fromStart: number[]
  /** From the PUT's return: negative when the rules were in force before it answered. */
  fromReturn: number[]
}

async function ruleUpdates(w: WarrenFixture, sbx: Sandbox, rules: number): Promise<UpdateResult> {
  const target = HOSTS['ip-a.test']
  // Filler entries no one contacts (100.64.0.0/10 is always denied anyway).
  const filler = Array.from({ length: rules - 1 }, (_, i) => `100.64.${i >> 8}.${i & 255}`)
  const deny = { denyOut: [target, ...filler] }
  const allow = { denyOut: [`${HOSTS['ip-b.test']}`, ...filler] }
  const log = `/tmp/prober-${rules}.log`
  const put = async (body: object) => {
    const res = await api(w, 'PUT', `/sandboxes/${sbx.sandboxId}/network`, { json: body })
    if (res.status !== 204) throw new Error(`PUT /network: ${res.status} ${res.text}`)
  }
  await put(allow)
  const prober = await sbx.commands.run(`python3 /tmp/prober.py ${target} 7 ${log}`, {
    background: true,
  })
  const lines = async () =>
    (await sbx.files.read(log))
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '))
  const result: UpdateResult = { rules, put: [], fromStart: [], fromReturn: [] }
  try {
    for (let i = 0; i < 2 + RUNS; i++) {
      const denying = i % 2 === 0
      await sleep(150)
      const before = (await lines()).length
      const t0 = Date.now() / 1000
      await put(denying ? deny : allow)
      const t1 = Date.now() / 1000
      let flip: string[] | undefined
      for (let tries = 0; !flip && tries < 200; tries++) {
        flip = (await lines()).slice(before).find((l) => (l[1] === 'open') !== denying)
        if (!flip) await sleep(10)
      }
      if (!flip) throw new Error(`rules with ${rules} entries never took effect`)
      const at = Number(flip[0])
      if (i >= 2) {
        result.put.push((t1 - t0) * 1000)
        result.fromStart.push((at - t0) * 1000)
        result.fromReturn.push((at - t1) * 1000)
      }
      process.stderr.write(`\rrule updates (${rules} rules): ${i + 1}/${2 + RUNS}   `)
    }
    process.stderr.write('\n')
  } finally {
    await prober.kill().catch(() => {})
    await put({})
  }
  return result
}

// ------------------------------------------------------------ egress proxy

interface Timings {
  connect: number[]
  total: number[]
}

/** `curl` REQUESTS times in the sandbox; each a new connection; DNS pinned with --resolve. */
async function smallRequests(sbx: Sandbox, url: string, resolve: string): Promise<Timings> {
  const out = await run(
    sbx,
    `for i in $(seq ${REQUESTS}); do curl -sS -o /dev/null --cacert /tmp/ca.pem --resolve ${resolve} ` +
      `-w '%{time_connect} %{time_appconnect} %{time_total}\\n' ${url}; done`,
  )
  const t: Timings = { connect: [], total: [] }
  for (const line of out.trim().split('\n')) {
    const [connect, appconnect, total] = line.split(' ').map((x) => Number(x) * 1000)
    // For HTTPS, setup ends when TLS is up (through the proxy: once the upstream answered it).
    t.connect.push(appconnect! > 0 ? appconnect! : connect!)
    t.total.push(total!)
  }
  return t
}

/** One download's throughput in MiB/s; a short one fails the benchmark. */
async function download(sbx: Sandbox, url: string, resolve: string): Promise<number> {
  const out = await run(
    sbx,
    `curl -sS -o /dev/null --cacert /tmp/ca.pem --resolve ${resolve} ` +
      `-w '%{speed_download} %{size_download}\\n' ${url}`,
  )
  const [speed, size] = out.trim().split(' ').map(Number)
  if (size !== MIB * 2 ** 20) throw new Error(`download was cut short: ${size} bytes`)
  return speed! / 2 ** 20
}

// ------------------------------------------------------------ main

async function main(): Promise<Figures> {
  console.log(
    `network benchmark: ${RUNS} rule updates per size, ${REQUESTS} requests, ${DOWNLOADS}×${MIB} MiB; ` +
      `${cpus().length} CPUs, load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  )
  let internet: Internet | undefined
  let w: WarrenFixture | undefined
  let sbx: Sandbox | undefined
  const stop = () => {
    void (async () => {
      await sbx?.kill().catch(() => {})
      await w?.teardown().catch(() => {})
      await internet?.teardown().catch(() => {})
    })().finally(() => process.exit(130))
  }
  process.once('SIGINT', stop)
  try {
    internet = await startInternet()
    w = await startWarren({
      env: {
        WARREN_DNS_UPSTREAMS: DNS_IP,
        WARREN_EGRESS_KERNEL_CARRY: values.copy ? 'false' : 'true',
      },
    })
    sbx = await Sandbox.create({ ...w.sdk, timeoutMs: 3_600_000, metadata: { bench: 'network' } })
    await prepare(sbx, internet)
    await sbx.files.write('/tmp/prober.py', PROBER)

    const updates = values['egress-only']
      ? []
      : [await ruleUpdates(w, sbx, 10), await ruleUpdates(w, sbx, 1000)]

    // other.test only by name (through the proxy); allowed.test's address by address (direct).
    const rules = {
      allowOut: ['other.test', HOSTS['allowed.test']],
      denyOut: ['0.0.0.0/0'],
    }
    const res = await api(w, 'PUT', `/sandboxes/${sbx.sandboxId}/network`, { json: rules })
    if (res.status !== 204) throw new Error(`PUT /network: ${res.status} ${res.text}`)
    const proxied = (scheme: string, path = '/') => ({
      url: `${scheme}://other.test${path}`,
      resolve: `other.test:${scheme === 'https' ? 443 : 80}:${HOSTS['other.test']}`,
    })
    const direct = (scheme: string, path = '/') => ({
      url: `${scheme}://allowed.test${path}`,
      resolve: `allowed.test:${scheme === 'https' ? 443 : 80}:${HOSTS['allowed.test']}`,
    })
    const small: Array<{ what: string; proxy: Timings; direct: Timings }> = []
    for (const scheme of ['http', 'https']) {
      process.stderr.write(`small ${scheme} requests...\n`)
      // Interleaved halves, so drift on the machine hits both alike.
      const a1 = await smallRequests(sbx, direct(scheme).url, direct(scheme).resolve)
      const b1 = await smallRequests(sbx, proxied(scheme).url, proxied(scheme).resolve)
      const b2 = await smallRequests(sbx, proxied(scheme).url, proxied(scheme).resolve)
      const a2 = await smallRequests(sbx, direct(scheme).url, direct(scheme).resolve)
      small.push({
        what: scheme.toUpperCase(),
        direct: { connect: [...a1.connect, ...a2.connect], total: [...a1.total, ...a2.total] },
        proxy: { connect: [...b1.connect, ...b2.connect], total: [...b1.total, ...b2.total] },
      })
    }
    process.stderr.write(`${MIB} MiB downloads...\n`)
    const path = `/bytes/${MIB * 2 ** 20}`
    const big: Array<{ what: string; direct: number[]; proxy: number[] }> = []
    for (const scheme of ['http', 'https']) {
      // Alternating, so drift on the machine hits both alike.
      const b = { what: scheme.toUpperCase(), direct: [] as number[], proxy: [] as number[] }
      for (let i = 0; i < DOWNLOADS; i++) {
        b.direct.push(await download(sbx, direct(scheme, path).url, direct(scheme, path).resolve))
        b.proxy.push(await download(sbx, proxied(scheme, path).url, proxied(scheme, path).resolve))
      }
      big.push(b)
    }

    if (updates.length) {
      console.log('\nRule updates: PUT /sandboxes/{id}/network, then a TCP prober in the sandbox')
      console.table(
        updates.map((u) => ({
          rules: u.rules,
          'PUT median': msf(median(u.put)),
          'PUT p95': msf(p95(u.put)),
          'start→enforced median': msf(median(u.fromStart)),
          'start→enforced p95': msf(p95(u.fromStart)),
          'return→enforced median': msf(median(u.fromReturn)),
          'return→enforced p95': msf(p95(u.fromReturn)),
        })),
      )
      console.log('(return→enforced ≤ 0: the rules were in force when the PUT answered)')
    }

    console.log(`\nSmall requests (${2 * REQUESTS} each, new connection each): proxy vs direct`)
    console.table(
      small.flatMap((s) =>
        (['connect', 'total'] as const).map((k) => ({
          what: `${s.what} ${k === 'connect' ? 'setup' : 'last byte'}`,
          'direct median': msf(median(s.direct[k])),
          'direct p95': msf(p95(s.direct[k])),
          'proxy median': msf(median(s.proxy[k])),
          'proxy p95': msf(p95(s.proxy[k])),
          'median ratio': `${(median(s.proxy[k]) / median(s.direct[k])).toFixed(2)}×`,
          'p95 ratio': `${(p95(s.proxy[k]) / p95(s.direct[k])).toFixed(2)}×`,
        })),
      ),
    )
    console.log(
      '(setup: TCP connect for HTTP, TLS up for HTTPS; a proxied HTTP connect reaches the proxy\n' +
        " itself, whose upstream dial waits for the request head and shows in 'last byte')",
    )
    console.log(`\n${MIB} MiB downloads (${DOWNLOADS} each): throughput`)
    console.table(
      big.map((b) => ({
        what: b.what,
        'direct median': `${median(b.direct).toFixed(0)} MiB/s`,
        'proxy median': `${median(b.proxy).toFixed(0)} MiB/s`,
        'proxy / direct': `${(median(b.proxy) / median(b.direct)).toFixed(2)}×`,
      })),
    )
    const figures: Figures = {}
    for (const u of updates) {
      figures[`ruleUpdate${u.rules}PutMs`] = median(u.put)
      figures[`ruleUpdate${u.rules}EnforcedMs`] = median(u.fromStart)
      figures[`ruleUpdate${u.rules}EnforcedAfterReturnMs`] = median(u.fromReturn)
    }
    for (const s of small) {
      const scheme = s.what.toLowerCase()
      for (const [k, name] of [
        ['connect', 'Setup'],
        ['total', 'LastByte'],
      ] as const) {
        figures[`${scheme}${name}DirectMs`] = median(s.direct[k])
        figures[`${scheme}${name}ProxyMs`] = median(s.proxy[k])
        figures[`${scheme}${name}ProxyOverDirect`] = median(s.proxy[k]) / median(s.direct[k])
      }
    }
    for (const b of big) {
      const scheme = b.what.toLowerCase()
      figures[`${scheme}DownloadDirectMiBps`] = median(b.direct)
      figures[`${scheme}DownloadProxyMiBps`] = median(b.proxy)
      figures[`${scheme}DownloadProxyOverDirect`] = median(b.proxy) / median(b.direct)
    }
    return figures
  } finally {
    process.off('SIGINT', stop)
    await sbx?.kill().catch(() => {})
    await w?.teardown()
    await internet?.teardown()
  }
}

await runBenchmark('network', values.json, main)
