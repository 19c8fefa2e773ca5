// Idle sandboxes at scale: memory per sandbox, create and proxy latency at 10 vs --count.
// Against a `warren up` of its own (capacity raised to admit them all):
//   create → first command   SDK Sandbox.create + commands.run('true'), one
//                            at a time (each killed before the next), with 10
//                            sandboxes idle and again with --count idle;
//                            beside each, the runtime floor (raw `runc run`)
//                            and two host operations of a create (netns,
//                            loop mount) under the same population
//   proxy latency            GET through the edge proxy to a python http.server
//                            in one sandbox, a new connection per request,
//                            at 10 and at --count
//   memory per sandbox       for every idle sandbox (all but the one serving
//                            the proxy's probe): Private_Clean+Private_Dirty of
//                            the processes in its cgroup, and the cgroup's own
//                            charge; target ≤ 15 MiB private
//   host                     `warren up`'s resident memory (its process tree)
//                            and idle CPU, the sandboxes' idle CPU, at both
// and the issue's target: create and proxy latency at --count within 1.5× of
// those at 10. Every sandbox is killed at the end (also on failure or Ctrl-C)
// and the host must hold nothing of the node afterwards.
// Privileged (runc, netns, nft); traffic only to loopback. Build first, then:
//   npm run bench -- idle [--count 500] [--samples 10] [--requests 50] [--concurrency 8] [--settle 30] [--json]
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { loadOrchestratorConfig } from '@warren/shared'
import { Sandbox } from 'e2b'
import { createDiskImage, mountDisk } from '../packages/orchestrator/dist/runtime/disk.js'
import { unmount } from '../packages/orchestrator/dist/runtime/overlay.js'
import { api, eventually, sleep } from '../tests/helpers/api-client.js'
import { sandboxCgroup } from '../tests/helpers/node-fixture.js'
import { proxyRequest, sandboxHost } from '../tests/helpers/proxy-client.js'
import { startWarren, type WarrenFixture } from '../tests/helpers/warren-fixture.js'
import { type Floor, prepareFloor } from './lib/floor.js'
import { cpuMs, leftoversNow, smapsRollup } from './lib/host.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, pct } from './lib/stats.js'

const values = benchArgs({
  count: { type: 'string', default: '500' },
  /** Sequential create → first command samples at each population. */
  samples: { type: 'string', default: '10' },
  /** Proxy requests at each population. */
  requests: { type: 'string', default: '50' },
  /** Creates in flight while filling up. */
  concurrency: { type: 'string', default: '8' },
  /** Seconds left idle before measuring: a new envd's start-up work (its GCs) dies down in ~10 s. */
  settle: { type: 'string', default: '30' },
})
const COUNT = Number(values.count)
const BASE = 10
const SAMPLES = Number(values.samples)
const REQUESTS = Number(values.requests)
const CONCURRENCY = Number(values.concurrency)
const SETTLE_MS = Number(values.settle) * 1000
const TARGET_RATIO = 1.5
const WARM_SLOTS = loadOrchestratorConfig({}, {}).warmNetworkSlots
const TARGET_PRIVATE_MIB = 15
/** How long each idle-CPU window lasts. */
const CPU_WINDOW_MS = 10_000
const SERVER_PORT = 8000
const CG_V2 = existsSync('/sys/fs/cgroup/cgroup.controllers')

if (!(COUNT > BASE)) throw new Error(`--count must exceed ${BASE}`)

const now = () => performance.now()
const fmt = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : '-')
const mib = (kib: number) => (Number.isFinite(kib) ? `${(kib / 1024).toFixed(1)} MiB` : '-')
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')

let aborted = false

// ---------------------------------------------------------------- sandboxes

/** Sandboxes this run created and has not killed: what the cleanup kills. */
const alive = new Set<string>()

async function createIdle(w: WarrenFixture): Promise<string> {
  const res = await api(w, 'POST', '/v2/sandboxes', {
    json: { templateID: 'base', timeout: 3600, metadata: { bench: 'idle' } },
  })
  if (res.status !== 201) throw new Error(`create: ${res.status} ${res.text}`)
  const id = (res.body as { sandboxID: string }).sandboxID
  alive.add(id)
  return id
}

async function kill(w: WarrenFixture, id: string): Promise<void> {
  const res = await api(w, 'DELETE', `/sandboxes/${id}`)
  if (res.status !== 204 && res.status !== 404) throw new Error(`kill ${id}: ${res.status}`)
  alive.delete(id)
}

/** Runs `jobs` with at most `limit` in flight; stops at the first failure (or Ctrl-C). */
async function bounded(
  n: number,
  limit: number,
  job: (i: number) => Promise<void>,
  interruptible = true,
) {
  let next = 0
  let failed: unknown
  const worker = async () => {
    while (next < n && failed === undefined && !(interruptible && aborted)) {
      const i = next++
      try {
        await job(i)
      } catch (err) {
        failed ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker))
  if (failed !== undefined) throw failed
  if (interruptible && aborted) throw new Error('interrupted')
}

/** Creates idle sandboxes until `ids` holds `target`. */
async function fill(w: WarrenFixture, ids: string[], target: number): Promise<number> {
  const t = now()
  const todo = target - ids.length
  await bounded(todo, CONCURRENCY, async () => {
    ids.push(await createIdle(w))
    if (ids.length % 10 === 0 || ids.length === target)
      process.stderr.write(`\rsandboxes: ${ids.length}/${target}   load ${load()}   `)
  })
  process.stderr.write('\n')
  return todo / ((now() - t) / 1000)
}

// ---------------------------------------------------------------- latency

/** A sandbox serving small files on SERVER_PORT, reached through the edge proxy. */
async function startServer(w: WarrenFixture): Promise<Sandbox> {
  const sbx = await Sandbox.create('base', { ...w.sdk, timeoutMs: 3_600_000 })
  alive.add(sbx.sandboxId)
  await sbx.files.write('/tmp/www/index.html', '<p>idle</p>\n')
  await sbx.commands.run(`python3 -m http.server ${SERVER_PORT} --bind 0.0.0.0`, {
    background: true,
    timeoutMs: 0,
    cwd: '/tmp/www',
  })
  const host = sandboxHost(w, sbx.sandboxId, SERVER_PORT)
  await eventually(
    'the server answers through the proxy',
    async () => (await proxyRequest(w, { host }).catch(() => ({ status: 0 }))).status === 200,
    30_000,
    100,
  )
  return sbx
}

/** GET / through the edge proxy, one new connection per request. */
async function proxyLatency(w: WarrenFixture, sandboxId: string): Promise<number[]> {
  const host = sandboxHost(w, sandboxId, SERVER_PORT)
  const out: number[] = []
  for (let i = 0; i < REQUESTS + 5; i++) {
    const t = now()
    const res = await proxyRequest(w, { host })
    const ms = now() - t
    if (res.status !== 200) throw new Error(`proxy: ${res.status} ${res.text.slice(0, 200)}`)
    if (i >= 5) out.push(ms)
  }
  return out
}

/**
 * SDK create + first command, one at a time, each killed before the next;
 * before each, one run of the runtime floor (`runc run /bin/true` with the
 * sandbox's spec, bench/lib/floor.ts) under the same population.
 */
async function createLatency(w: WarrenFixture, floor: Floor, ops: HostOps) {
  const total: number[] = []
  const create: number[] = []
  const floors: number[] = []
  const netns: number[] = []
  const loopMount: number[] = []
  for (let i = 0; i < SAMPLES + 1 && !aborted; i++) {
    const f = await floor.once()
    netns.push(await ops.netns())
    loopMount.push(await ops.loopMount())
    const t0 = now()
    const sbx = await Sandbox.create('base', { ...w.sdk, timeoutMs: 600_000 })
    alive.add(sbx.sandboxId)
    const t1 = now()
    const r = await sbx.commands.run('true')
    const t2 = now()
    if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`)
    await kill(w, sbx.sandboxId)
    if (i === 0) continue // the first after a fill pays for nothing else
    total.push(t2 - t0)
    create.push(t1 - t0)
    floors.push(f.runc)
  }
  return { total, create, floors, netns, loopMount }
}

// ---------------------------------------------------------------- host operations

/**
 * Two host operations of every create, timed alone under the same
 * population: a network namespace added and deleted (named like the node's
 * own, so a leak shows in the leftover check), and a small ext4 image
 * loop-mounted and unmounted by the node's own functions (as a sandbox's
 * disk is).
 */
async function hostOps(prefix: string) {
  const dir = mkdtempSync('/tmp/warren-idle-ops-')
  const image = join(dir, 'disk.img')
  const target = join(dir, 'mnt')
  mkdirSync(target)
  await createDiskImage(image, 64, 1024)
  const netns = `${prefix}-n999999`
  const timed = async (fn: () => Promise<void> | void) => {
    const t = now()
    await fn()
    return now() - t
  }
  return {
    netns: () =>
      timed(() => {
        execFileSync('ip', ['netns', 'add', netns])
        execFileSync('ip', ['netns', 'del', netns])
      }),
    loopMount: () =>
      timed(async () => {
        await mountDisk(image, target)
        await unmount(target)
      }),
    async close() {
      await unmount(target) // in case a timed mount failed halfway
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

type HostOps = Awaited<ReturnType<typeof hostOps>>

// ---------------------------------------------------------------- memory

interface SandboxMemory {
  privateKiB: number
  pssKiB: number
  processes: Array<{ comm: string; privateKiB: number }>
  /** The cgroup's charge (memory.usage_in_bytes / memory.current), its anon and file parts. */
  cgroupKiB: number
  anonKiB: number
  fileKiB: number
}

function keyed(text: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const line of text.split('\n')) {
    const [k, v] = line.split(' ')
    if (k && v) out[k] = Number(v)
  }
  return out
}

function sandboxMemory(prefix: string, id: string): SandboxMemory {
  const dir = sandboxCgroup(prefix, id, 'memory')
  const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)
  const processes = pids.flatMap((p) => {
    try {
      const s = smapsRollup(Number(p))
      return [
        {
          comm: readFileSync(`/proc/${p}/comm`, 'utf8').trim(),
          privateKiB: (s.Private_Clean ?? 0) + (s.Private_Dirty ?? 0),
          pssKiB: s.Pss ?? 0,
        },
      ]
    } catch {
      return [] // exited meanwhile
    }
  })
  const stat = keyed(readFileSync(join(dir, 'memory.stat'), 'utf8'))
  const usage = Number(
    readFileSync(join(dir, CG_V2 ? 'memory.current' : 'memory.usage_in_bytes'), 'utf8'),
  )
  return {
    privateKiB: processes.reduce((n, p) => n + p.privateKiB, 0),
    pssKiB: processes.reduce((n, p) => n + p.pssKiB, 0),
    processes: processes.map(({ comm, privateKiB }) => ({ comm, privateKiB })),
    cgroupKiB: usage / 1024,
    anonKiB: (CG_V2 ? (stat.anon ?? 0) : (stat.total_rss ?? stat.rss ?? 0)) / 1024,
    fileKiB: (CG_V2 ? (stat.file ?? 0) : (stat.total_cache ?? stat.cache ?? 0)) / 1024,
  }
}

function memorySummary(prefix: string, ids: string[]) {
  const all = ids.flatMap((id) => {
    try {
      return [sandboxMemory(prefix, id)]
    } catch {
      return [] // its container exited: counted below
    }
  })
  const of = (k: keyof Omit<SandboxMemory, 'processes'>) => all.map((m) => m[k])
  const privates = of('privateKiB')
  const mid = all[privates.indexOf(median(privates))]
  return {
    measured: all.length,
    privateMedian: median(privates),
    privateMax: Math.max(...privates),
    pssMedian: median(of('pssKiB')),
    cgroupMedian: median(of('cgroupKiB')),
    cgroupMax: Math.max(...of('cgroupKiB')),
    anonMedian: median(of('anonKiB')),
    fileMedian: median(of('fileKiB')),
    processes: mid?.processes ?? [],
  }
}

// ---------------------------------------------------------------- host

/** `warren up` and every process under it (edge workers, lxcfs if it started one). */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = children.get(ppid) ?? []
      list.push(Number(p))
      children.set(ppid, list)
    } catch {
      // exited meanwhile
    }
  }
  const out = [root]
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []))
  return out
}

function rssKiB(pids: number[]): number {
  let n = 0
  for (const pid of pids) {
    try {
      n += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
    } catch {
      // exited meanwhile
    }
  }
  return n
}

/** CPU seconds (user + system) the processes have used. */
function cpuSeconds(pids: number[]): number {
  return pids.reduce((t, pid) => t + (cpuMs(pid) ?? 0), 0) / 1000
}

/** CPU seconds every listed sandbox's cgroup has used. */
function sandboxCpuSeconds(prefix: string, ids: string[]): number {
  let s = 0
  for (const id of ids) {
    try {
      if (CG_V2) {
        const stat = keyed(readFileSync(join(sandboxCgroup(prefix, id, 'cpu'), 'cpu.stat'), 'utf8'))
        s += (stat.usage_usec ?? 0) / 1e6
      } else {
        s +=
          Number(
            readFileSync(join(sandboxCgroup(prefix, id, 'cpuacct'), 'cpuacct.usage'), 'utf8'),
          ) / 1e9
      }
    } catch {
      // gone meanwhile
    }
  }
  return s
}

function openFds(pids: number[]): number {
  let n = 0
  for (const pid of pids) {
    try {
      n += readdirSync(`/proc/${pid}/fd`).length
    } catch {
      // exited meanwhile
    }
  }
  return n
}

/** Lines of the node's host nftables table: what grows with the sandboxes there. */
function hostTableLines(prefix: string): number {
  try {
    return execFileSync('nft', ['list', 'table', 'inet', `warren_${prefix}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).split('\n').length
  } catch {
    return Number.NaN
  }
}

function memAvailableKiB(): number {
  return Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1])
}

/** Idle CPU of `warren up` and of the sandboxes over one window, in % of a core. */
async function idleCpu(w: WarrenFixture, ids: string[]) {
  const tree = processTree(w.pid()!)
  const [c0, s0, t0] = [cpuSeconds(tree), sandboxCpuSeconds(w.prefix, ids), now()]
  await sleep(CPU_WINDOW_MS)
  const secs = (now() - t0) / 1000
  return {
    warrenPct: ((cpuSeconds(tree) - c0) / secs) * 100,
    sandboxesPct: ((sandboxCpuSeconds(w.prefix, ids) - s0) / secs) * 100,
  }
}

// ---------------------------------------------------------------- one population

/** Mounts on the host: each sandbox adds its disk's and its root filesystem's. */
function hostMounts(): number {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length - 1
}

async function measureAt(
  w: WarrenFixture,
  ids: string[],
  server: Sandbox,
  floor: Floor,
  ops: HostOps,
) {
  const population = ids.length + 1
  console.error(`at ${population}: settling, then idle CPU, proxy and create latency ...`)
  await sleep(SETTLE_MS)
  const tree = processTree(w.pid()!)
  const host = {
    rssKiB: rssKiB(tree),
    fds: openFds(tree),
    nftLines: hostTableLines(w.prefix),
    mounts: hostMounts(),
    memAvailableKiB: memAvailableKiB(),
  }
  const cpu = await idleCpu(w, ids)
  const memory = memorySummary(w.prefix, ids)
  const proxy = await proxyLatency(w, server.sandboxId)
  const creates = await createLatency(w, floor, ops)
  return { population, host, cpu, memory, proxy, creates, load: load() }
}

// ---------------------------------------------------------------- file watches

/**
 * Every idle sandbox watches a directory through envd (SDK watchDir), all at
 * once: each holds an inotify instance, and those of every sandbox count
 * against one budget on the host (see orchestrator runtime/host-limits.ts).
 * Returns how many could not.
 */
async function watchEverywhere(w: WarrenFixture, ids: string[]): Promise<number> {
  const handles: Array<{ stop(): Promise<void> }> = []
  let failed = 0
  let firstError: unknown
  try {
    await bounded(ids.length, 16, async (i) => {
      try {
        const sbx = await Sandbox.connect(ids[i]!, w.sdk)
        handles.push(await sbx.files.watchDir('/tmp', () => {}))
      } catch (err) {
        failed++
        firstError ??= err
      }
    })
  } finally {
    await Promise.all(handles.map((h) => h.stop().catch(() => {})))
  }
  if (firstError) console.error('a watch failed:', firstError)
  return failed
}

// ---------------------------------------------------------------- main

async function cleanup(w: WarrenFixture): Promise<{ killS: number; drainS: number }> {
  const t = now()
  const ids = [...alive]
  console.error(`killing ${ids.length} sandboxes ...`)
  await bounded(ids.length, 16, async (i) => kill(w, ids[i]!), false)
  const killS = (now() - t) / 1000
  const t2 = now()
  // The node's warm network slots stay until it stops (the fixture's
  // teardown then proves the host clean); everything else must go.
  const slot = /^(netns|link) /
  let left: string[] = []
  try {
    await eventually(
      'no leftovers',
      () => {
        left = leftoversNow(w.prefix, w.dataDir)
        const slots = left.filter((l) => l.startsWith('netns ')).length
        return slots <= WARM_SLOTS && left.every((l) => slot.test(l))
      },
      120_000 + ids.length * 500,
      500,
    )
  } catch {
    throw new Error(`after killing all, left on the host:\n  ${left.slice(0, 50).join('\n  ')}`)
  }
  return { killS, drainS: (now() - t2) / 1000 }
}

async function main(): Promise<Figures> {
  console.log(
    `idle benchmark: ${COUNT} idle sandboxes (filled ${CONCURRENCY} at a time), ${SAMPLES} create samples ` +
      `and ${REQUESTS} proxy requests at ${BASE} and at ${COUNT}; ${cpus().length} CPUs, load ${load()}`,
  )
  const headroom = COUNT + 2 * CONCURRENCY + 10
  // base reserves 512 MB per sandbox; an idle one uses a few percent of that.
  const w = await startWarren({
    env: {
      WARREN_MEMORY_CAPACITY_MB: String(headroom * 512),
      WARREN_MAX_CONCURRENT_SANDBOXES: String(headroom),
      // The node's own default, not the fixture's.
      WARREN_WARM_NETWORK_SLOTS: String(WARM_SLOTS),
    },
  })
  let cleaning = false
  const onSigint = () => {
    // Ctrl-C stops the run and kills what it made; once that has begun (or
    // on a second Ctrl-C), straight to the fixture's teardown, which kills the rest.
    if (aborted || cleaning) void w.teardown().finally(() => process.exit(130))
    aborted = true
  }
  process.on('SIGINT', onSigint)
  const wall = now()
  let failure: unknown
  let figures: Figures = {}
  let floor: Floor | undefined
  let ops: HostOps | undefined
  try {
    floor = prepareFloor()
    ops = await hostOps(w.prefix)
    const server = await startServer(w)
    const ids: string[] = []
    await fill(w, ids, BASE - 1)
    const at10 = await measureAt(w, ids, server, floor, ops)
    const fillRate = await fill(w, ids, COUNT - 1)
    const atN = await measureAt(w, ids, server, floor, ops)
    const watchFailures = await watchEverywhere(w, ids)
    figures = { ...report(at10, atN, fillRate), watchFailures }
    console.log(
      `file watches: ${ids.length - watchFailures} of ${ids.length} idle sandboxes held one at once` +
        (watchFailures ? ' — NOT all' : ''),
    )
  } catch (err) {
    failure = err
  } finally {
    cleaning = true
    await floor?.close()
    await ops?.close()
    try {
      const { killS, drainS } = await cleanup(w)
      console.log(
        `killed the rest in ${killS.toFixed(1)} s; teardowns done ${drainS.toFixed(1)} s later; ` +
          'left on the host: nothing but the warm network slots (no mount, cgroup, process, loop ' +
          `device, runc state, sandbox dir; the teardown then checks all). Wall time ${((now() - wall) / 1000).toFixed(0)} s, load ${load()}`,
      )
    } finally {
      await w.teardown()
      process.off('SIGINT', onSigint)
    }
  }
  if (failure) throw failure
  return figures
}

type At = Awaited<ReturnType<typeof measureAt>>

function report(a: At, b: At, fillRate: number): Figures {
  const createA = median(a.creates.total)
  const createB = median(b.creates.total)
  const proxyA = median(a.proxy)
  const proxyB = median(b.proxy)
  const row = (label: string, x: (at: At) => string) => ({
    measure: label,
    [`at ${a.population}`]: x(a),
    [`at ${b.population}`]: x(b),
  })
  console.log()
  console.table([
    row('create → first command, median', (at) => fmt(median(at.creates.total))),
    row('create → first command, p95', (at) => fmt(pct(at.creates.total, 95))),
    row('  of which create (SDK)', (at) => fmt(median(at.creates.create))),
    row('floor: runc run /bin/true, median', (at) => fmt(median(at.creates.floors))),
    row('  ip netns add + del, median', (at) => fmt(median(at.creates.netns))),
    row("  disk image mount + unmount (the node's), median", (at) =>
      fmt(median(at.creates.loopMount)),
    ),
    row('proxy GET (new connection), p50', (at) => fmt(median(at.proxy))),
    row('proxy GET (new connection), p95', (at) => fmt(pct(at.proxy, 95))),
    row('private memory per sandbox, median', (at) => mib(at.memory.privateMedian)),
    row('private memory per sandbox, max', (at) => mib(at.memory.privateMax)),
    row('PSS per sandbox, median', (at) => mib(at.memory.pssMedian)),
    row('cgroup charge per sandbox, median', (at) => mib(at.memory.cgroupMedian)),
    row('cgroup charge per sandbox, max', (at) => mib(at.memory.cgroupMax)),
    row(
      '  of which anon / file, median',
      (at) => `${mib(at.memory.anonMedian)} / ${mib(at.memory.fileMedian)}`,
    ),
    row('sandboxes measured', (at) => String(at.memory.measured)),
    row('warren up RSS (its process tree)', (at) => mib(at.host.rssKiB)),
    row('warren up open files (its process tree)', (at) => String(at.host.fds)),
    row('host nftables table (lines)', (at) => String(at.host.nftLines)),
    row('host mounts', (at) => String(at.host.mounts)),
    row('warren up idle CPU', (at) => `${at.cpu.warrenPct.toFixed(1)} % of a core`),
    row('all sandboxes idle CPU', (at) => `${at.cpu.sandboxesPct.toFixed(1)} % of a core`),
    row('host MemAvailable', (at) => mib(at.host.memAvailableKiB)),
    row('load average', (at) => at.load),
  ])
  const added = b.population - a.population
  const hostPerSandbox = (b.host.rssKiB - a.host.rssKiB) / added
  const availPerSandbox = (a.host.memAvailableKiB - b.host.memAvailableKiB) / added
  const mid = b.memory.processes
  console.log(
    `an idle sandbox at ${b.population} (the median one): ${mid.map((p) => `${p.comm} ${mib(p.privateKiB)}`).join(', ')}`,
  )
  console.log(
    `host side per added sandbox: warren up RSS +${mib(hostPerSandbox)}; host MemAvailable ` +
      `−${mib(availPerSandbox)} (everything: the sandbox's own memory, kernel objects, page cache; ` +
      `other work on the machine shows in it). Filled at ${fillRate.toFixed(1)} sandboxes/s.`,
  )
  const createRatio = createB / createA
  const floorRatio = median(b.creates.floors) / median(a.creates.floors)
  const proxyRatio = proxyB / proxyA
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met')
  console.log(
    `targets: create → first command at ${b.population} / at ${a.population} = ${createRatio.toFixed(2)}× ` +
      `(≤ ${TARGET_RATIO}×: ${verdict(createRatio <= TARGET_RATIO)}; the runc floor's own ` +
      `ratio ${floorRatio.toFixed(2)}×); proxy p50 ${proxyRatio.toFixed(2)}× ` +
      `(${verdict(proxyRatio <= TARGET_RATIO)}); private memory per sandbox max ${mib(b.memory.privateMax)} ` +
      `(≤ ${TARGET_PRIVATE_MIB} MiB: ${verdict(b.memory.privateMax / 1024 <= TARGET_PRIVATE_MIB)})`,
  )
  return {
    count: b.population,
    createAt10Ms: createA,
    createAtCountMs: createB,
    createAtCountOverAt10: createRatio,
    floorAt10Ms: median(a.creates.floors),
    floorAtCountMs: median(b.creates.floors),
    floorAtCountOverAt10: floorRatio,
    netnsAtCountOverAt10: median(b.creates.netns) / median(a.creates.netns),
    loopMountAtCountOverAt10: median(b.creates.loopMount) / median(a.creates.loopMount),
    proxyAt10Ms: proxyA,
    proxyAtCountMs: proxyB,
    proxyAtCountOverAt10: proxyRatio,
    privateMedianMiB: b.memory.privateMedian / 1024,
    privateMaxMiB: b.memory.privateMax / 1024,
    privateTargetMiB: TARGET_PRIVATE_MIB,
    cgroupMedianMiB: b.memory.cgroupMedian / 1024,
    cgroupMaxMiB: b.memory.cgroupMax / 1024,
    hostRssPerSandboxMiB: hostPerSandbox / 1024,
    memAvailablePerSandboxMiB: availPerSandbox / 1024,
    warrenIdleCpuAt10Pct: a.cpu.warrenPct,
    warrenIdleCpuAtCountPct: b.cpu.warrenPct,
    sandboxesIdleCpuAtCountPct: b.cpu.sandboxesPct,
    fillPerS: fillRate,
  }
}

await runBenchmark('idle', values.json, main)
