// Sandbox create vs a raw `runc run`; idle memory.
// One table comparing "Create called → the first process answers on its port"
// against a raw runc floor measured in the same run, plus the memory of an
// idle sandbox. Privileged (runc, netns, nft); traffic only to the sandboxes'
// own namespaces. Build first, then:
//   npm run bench -- create [--runs 30] [--json]
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join, resolve } from 'node:path'
import { createMachineHost, type MachineHost } from '@warren/orchestrator'
import { createLogger, loadOrchestratorConfig } from '@warren/shared'
import {
  ENVD_PORT,
  freePort,
  type NodeFixture,
  type SandboxRecord,
  sandboxCgroup,
  startNodeFixture,
} from '../tests/helpers/node-fixture.js'
import { type Floor, prepareFloor } from './lib/floor.js'
import { smapsRollup } from './lib/host.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, ms, pct } from './lib/stats.js'

const values = benchArgs({ runs: { type: 'string', default: '30' } })
const RUNS = Number(values.runs)
const WARMUP = 3
const ROOT = resolve(import.meta.dirname, '..')

const now = () => performance.now()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------- envd alone

const ENVD_BUNDLE = join(ROOT, 'packages/envd/dist/bundle/envd.mjs')

/**
 * For reference, not the floor: envd's own start, spawned directly on the
 * host on loopback (no container), until its /health answers 204.
 */
async function envdAloneOnce(): Promise<number> {
  const port = await freePort()
  const t0 = now()
  const child = spawn(
    process.execPath,
    [ENVD_BUNDLE, '--host', '127.0.0.1', '--port', String(port)],
    {
      stdio: 'ignore',
    },
  )
  try {
    await waitHealthy('127.0.0.1', port)
    return now() - t0
  } finally {
    child.kill('SIGKILL')
    await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)))
  }
}

// ---------------------------------------------------------------- creates

interface Phases {
  slot: number
  rootfs: number
  runc: number
  ready: number
  health: number
}

interface CreateResult {
  total: number[]
  kill: number[]
  phases: Phases[]
  /** Baselines sampled in the same loop, one per create, under the same load. */
  floor: number[]
  floorWithOverlay: number[]
  envdAlone: number[]
}

/** GET /health on envd until it answers 204; tight polling, loopback-local. */
async function waitHealthy(ip: string, port = ENVD_PORT): Promise<void> {
  const deadline = now() + 30_000
  for (;;) {
    try {
      const res = await fetch(`http://${ip}:${port}/health`)
      if (res.status === 204) return
    } catch {
      // not listening yet
    }
    if (now() > deadline) throw new Error(`envd at ${ip} never answered`)
    await sleep(1)
  }
}

/**
 * Times each create from the call to the first 204 from envd's /health,
 * one at a time, killing each before the next; before each create, one floor
 * run and one envd-alone start are timed, so that the baselines see the same
 * machine load as the creates. With `idle`, the node is left to finish its
 * background work between creates (refilling warm network slots, as between
 * sporadic creates); without, creates come back to back.
 */
async function measureCreates(
  f: NodeFixture,
  host: MachineHost,
  floor: Floor,
  warm: number,
  idle: boolean,
): Promise<CreateResult> {
  const { node } = f
  // Cheap phase marks: wrap the two node operations that bound the phases.
  let marks: Record<string, number> = {}
  const slots = host.slots
  const acquire = slots.acquire.bind(slots)
  slots.acquire = async () => {
    const s = await acquire()
    marks.slot = now()
    return s
  }
  const runc = host.runc
  const runDetached = runc.runDetached.bind(runc)
  runc.runDetached = async (...args) => {
    marks.runcStart = now()
    await runDetached(...args)
    marks.runcEnd = now()
  }

  const result: CreateResult = {
    total: [],
    kill: [],
    phases: [],
    floor: [],
    floorWithOverlay: [],
    envdAlone: [],
  }
  for (let i = 0; i < RUNS + WARMUP; i++) {
    const base = await floor.once()
    const envdAlone = await envdAloneOnce()
    if (idle) {
      for (let w = 0; slots.ready < warm && w < 2000; w++) await sleep(5)
      await sleep(20)
    }
    marks = {}
    const t0 = now()
    const record: SandboxRecord = await f.create()
    const t1 = now()
    await waitHealthy(record.sandboxIp)
    const t2 = now()
    await node.kill(record.sandboxId)
    const t3 = now()
    if (i < WARMUP) continue
    result.floor.push(base.runc)
    result.floorWithOverlay.push(base.withOverlay)
    result.envdAlone.push(envdAlone)
    result.total.push(t2 - t0)
    result.kill.push(t3 - t2)
    result.phases.push({
      slot: marks.slot! - t0,
      rootfs: marks.runcStart! - marks.slot!,
      runc: marks.runcEnd! - marks.runcStart!,
      ready: t1 - marks.runcEnd!,
      health: t2 - t1,
    })
  }
  return result
}

// ---------------------------------------------------------------- memory

interface MemoryResult {
  perProcess: Array<{ comm: string; privateKiB: number; pssKiB: number; rssKiB: number }>
  privateKiB: number
  cgroupBytes: number
}

/** Private memory of every process of an idle sandbox, and its cgroup's usage. */
function measureMemory(prefix: string, record: SandboxRecord): MemoryResult {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
  const memDir = sandboxCgroup(prefix, record.sandboxId, 'memory')
  const pids = readFileSync(join(memDir, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number)
  const perProcess = pids.map((pid) => {
    const s = smapsRollup(pid)
    return {
      comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(),
      privateKiB: (s.Private_Clean ?? 0) + (s.Private_Dirty ?? 0),
      pssKiB: s.Pss ?? 0,
      rssKiB: s.Rss ?? 0,
    }
  })
  const usageFile = v2 ? 'memory.current' : 'memory.usage_in_bytes'
  return {
    perProcess,
    privateKiB: perProcess.reduce((n, p) => n + p.privateKiB, 0),
    cgroupBytes: Number(readFileSync(join(memDir, usageFile), 'utf8')),
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<Figures> {
  const defaultWarm = loadOrchestratorConfig({}, {}).warmNetworkSlots
  const results: Record<string, CreateResult> = {}
  let memory: MemoryResult[] = []
  const modes = [
    { name: 'warm', warm: defaultWarm, idle: true },
    { name: 'back-to-back', warm: defaultWarm, idle: false },
    { name: 'cold', warm: 0, idle: false },
  ] as const
  const floor = prepareFloor()
  // The floor and envd alone, back to back on a quiet machine, before any
  // sandbox exists; the same again interleaved with the creates below.
  const quiet = {
    floor: [] as number[],
    floorWithOverlay: [] as number[],
    envdAlone: [] as number[],
  }
  try {
    console.error(`quiet baselines: ${RUNS} floor runs, ${RUNS} envd-alone starts ...`)
    for (let i = 0; i < RUNS + WARMUP; i++) {
      const f = await floor.once()
      if (i >= WARMUP) quiet.floor.push(f.runc)
      if (i >= WARMUP) quiet.floorWithOverlay.push(f.withOverlay)
    }
    for (let i = 0; i < RUNS + WARMUP; i++) {
      const t = await envdAloneOnce()
      if (i >= WARMUP) quiet.envdAlone.push(t)
    }
    for (const { name, warm, idle } of modes) {
      console.error(`${name} (warmNetworkSlots ${warm}): ${RUNS} sequential creates ...`)
      let host: MachineHost | undefined
      const f = await startNodeFixture({
        config: { warmNetworkSlots: warm },
        host: (cfg) => {
          host = createMachineHost(cfg, createLogger('bench', 'warn'))
          return host
        },
      })
      try {
        results[name] = await measureCreates(f, host!, floor, warm, idle)
        if (name === 'warm') {
          // Idle memory: three sandboxes, left alone for a few seconds.
          const records = [await f.create(), await f.create(), await f.create()]
          for (const r of records) await waitHealthy(r.sandboxIp)
          await sleep(5000)
          memory = records.map((r) => measureMemory(f.prefix, r))
        }
      } finally {
        await f.teardown()
      }
    }
  } finally {
    await floor.close()
  }

  const mixed = (key: 'floor' | 'floorWithOverlay' | 'envdAlone') =>
    modes.flatMap((m) => results[m.name]![key])
  // The headline ratio uses the stricter (lower) of the two floors.
  const quietMed = median(quiet.floor)
  const mixedMed = median(mixed('floor'))
  const floorMed = Math.min(quietMed, mixedMed)
  const ratio = (x: number, base: number) => `${(x / base).toFixed(2)}×`.padStart(10)
  const row = (label: string, xs: number[], ratios = true) =>
    `${label.padEnd(50)}${ms(median(xs))}${ms(pct(xs, 95))}${ratios ? `${ratio(median(xs), quietMed)}${ratio(median(xs), mixedMed)}` : ''}`
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()
  const runcVersion = execFileSync('runc', ['--version'], { encoding: 'utf8' }).split('\n')[0]
  const warmMed = median(results.warm!.total)
  const coldMed = median(results.cold!.total)
  const lines = [
    '',
    `Warren sandbox create — ${cpus().length} CPUs, kernel ${kernel}, ${runcVersion}`,
    `${RUNS} runs per row (+${WARMUP} warm-up). "quiet": baselines run back to back before any`,
    'sandbox; "mixed": one floor run and one envd start before each create, under the same load.',
    '',
    `${''.padEnd(50)}${'median'.padStart(10)}${'p95'.padStart(10)}${'÷ quiet'.padStart(10)}${'÷ mixed'.padStart(10)}`,
    row('floor: runc run /bin/true, quiet', quiet.floor),
    row('floor: runc run /bin/true, mixed', mixed('floor')),
    row('floor + overlay mount/unmount, quiet', quiet.floorWithOverlay),
    row(`create → envd /health 204, warm network (${defaultWarm})`, results.warm!.total),
    row('  same, creates back to back (pool refilling)', results['back-to-back']!.total),
    row('create → envd /health 204, cold network (0)', results.cold!.total),
    row('kill (warm node)', results.warm!.kill, false),
    row('reference: envd alone on the host → 204, quiet', quiet.envdAlone),
    row('reference: envd alone on the host → 204, mixed', mixed('envdAlone')),
    `${'warm create − quiet floor − quiet envd alone'.padEnd(50)}${ms(warmMed - quietMed - median(quiet.envdAlone))}`,
    '',
    `target: create within 4× the floor (the stricter floor, ${floorMed.toFixed(1)} ms):`,
    `  warm ${(warmMed / floorMed).toFixed(2)}×, cold ${(coldMed / floorMed).toFixed(2)}× — ${
      warmMed <= 4 * floorMed && coldMed <= 4 * floorMed
        ? 'met'
        : warmMed <= 4 * floorMed
          ? 'met with the warm pool only'
          : 'NOT met'
    }`,
    '',
    `where create time goes (median per phase)${''.padEnd(5)}${'warm'.padStart(10)}${'b-to-b'.padStart(10)}${'cold'.padStart(10)}`,
  ]
  const phaseRows: Array<[string, keyof Phases]> = [
    ['network slot (take warm / build netns)', 'slot'],
    ['writable layer, overlay mount, bundle', 'rootfs'],
    ['runc run --detach', 'runc'],
    ['envd listening, /init, record', 'ready'],
    ['first /health 204 after create returned', 'health'],
  ]
  for (const [label, key] of phaseRows) {
    lines.push(
      `  ${label.padEnd(44)}${['warm', 'back-to-back', 'cold'].map((m) => ms(median(results[m]!.phases.map((p) => p[key])))).join('')}`,
    )
  }
  const privates = memory.map((m) => m.privateKiB)
  const cgroups = memory.map((m) => m.cgroupBytes)
  const mid = memory[privates.indexOf(median(privates))]!
  lines.push(
    '',
    `idle sandbox memory (median of ${memory.length}, after 5 s idle)`,
    `  private (Private_Clean+Private_Dirty), all processes ${(median(privates) / 1024).toFixed(1).padStart(8)} MiB`,
    ...mid.perProcess.map(
      (p) =>
        `    ${p.comm.padEnd(10)} private ${(p.privateKiB / 1024).toFixed(1).padStart(6)} MiB   pss ${(p.pssKiB / 1024).toFixed(1).padStart(6)} MiB   rss ${(p.rssKiB / 1024).toFixed(1).padStart(6)} MiB`,
    ),
    `  cgroup ${existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'memory.current' : 'memory.usage_in_bytes'}${''.padEnd(23)}${(median(cgroups) / 2 ** 20).toFixed(1).padStart(8)} MiB`,
    '',
  )
  console.log(lines.join('\n'))
  return {
    floorQuietMs: quietMed,
    floorMixedMs: mixedMed,
    warmCreateMs: warmMed,
    backToBackCreateMs: median(results['back-to-back']!.total),
    coldCreateMs: coldMed,
    killMs: median(results.warm!.kill),
    warmCreateOverFloor: warmMed / floorMed,
    coldCreateOverFloor: coldMed / floorMed,
    envdAloneQuietMs: median(quiet.envdAlone),
    idlePrivateMiB: median(privates) / 1024,
    idleCgroupMiB: median(cgroups) / 2 ** 20,
  }
}

await runBenchmark('create', values.json, main)
