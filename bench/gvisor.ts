// gVisor vs runc: create → first command, a syscall-heavy walk, checkpoint/restore by memory size.
// Against a `warren up` of its own, in one run:
//   create → first command   the SDK, unchanged, under a team whose policy
//                            requires gVisor vs the default team's runc, both
//                            beside the raw `runc run /bin/true` floor
//   syscall-heavy workload   in a sandbox of each: a walk of /usr that lstat()s
//                            every file, and 2000 small files written, stat()ed
//                            and removed (what pip or `git status` do)
//   snapshot / fork          through the SDK, a sandbox holding a counter:
//                            createSnapshot() (gVisor: its processes saved,
//                            runc: its files) and a create from the snapshot
//                            → first command, gVisor vs runc
//   checkpoint / restore     `runsc checkpoint` and `runsc restore` of a plain
//                            gVisor container holding --sizes MB of random
//                            bytes (no network: this runsc cannot save a
//                            connected or listening socket), beside writing and
//                            reading that many bytes to a file on the same disk
// Privileged (runc, runsc, netns, nft); traffic only to loopback and the
// sandboxes' own namespaces. Build first, then:
//   npm run bench -- gvisor [--runs 10] [--sizes 64,256,1024] [--parts create,walk,snapshot,checkpoint] [--json]
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { Sandbox } from 'e2b'
import { api } from '../tests/helpers/api-client.js'
import { cleanupHost, uniquePrefix } from '../tests/helpers/node-fixture.js'
import { startWarren, type WarrenFixture } from '../tests/helpers/warren-fixture.js'
import { bareSpec, baseTemplate, mountOverlay, prepareFloor, run } from './lib/floor.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, ms, pct } from './lib/stats.js'

const values = benchArgs({
  runs: { type: 'string', default: '10' },
  sizes: { type: 'string', default: '64,256,1024' },
  parts: { type: 'string', default: 'create,walk,snapshot,checkpoint' },
})
const PARTS = new Set(values.parts.split(','))
const RUNS = Number(values.runs)
const SIZES = values.sizes.split(',').map(Number)
const now = () => performance.now()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ------------------------------------------------------- SDK create, per team

type Opts = WarrenFixture['sdk']

/** A key of a new team whose policy requires gVisor: the SDK, unchanged, makes gVisor sandboxes. */
async function gvisorTeamKey(w: WarrenFixture): Promise<string> {
  const team = await api(w, 'POST', '/admin/teams', {
    json: { name: 'bench-gvisor', requiredIsolation: 'gvisor', maxConcurrent: 100 },
  })
  if (team.status !== 201) throw new Error(`team: ${team.status} ${team.text}`)
  const key = await api(w, 'POST', '/admin/teams/bench-gvisor/keys', { json: { name: 'bench' } })
  if (key.status !== 201) throw new Error(`key: ${key.status} ${key.text}`)
  return (key.body as { key: string }).key
}

async function createAndRun(w: WarrenFixture, opts: Opts, isolation: string): Promise<number> {
  const t0 = now()
  const sbx = await Sandbox.create({ ...opts, timeoutMs: 120_000 })
  await sbx.commands.run('true')
  const took = now() - t0
  const got = await api(w, 'GET', `/sandboxes/${sbx.sandboxId}`, { key: opts.apiKey })
  const actual = (got.body as { isolation?: string }).isolation
  await sbx.kill()
  if (actual !== isolation) throw new Error(`expected a ${isolation} sandbox, got ${actual}`)
  return took
}

// ------------------------------------------------------- syscall-heavy walk

const WALK = `
import os, time
t = time.perf_counter(); n = 0
for root, dirs, files in os.walk('/usr'):
    for f in files:
        try:
            os.lstat(os.path.join(root, f)); n += 1
        except OSError:
            pass
walk = time.perf_counter() - t
os.makedirs('/tmp/churn', exist_ok=True)
t = time.perf_counter()
for i in range(2000):
    p = '/tmp/churn/%d.py' % i
    with open(p, 'w') as fh:
        fh.write('x = 1\\n' * 10)
    os.stat(p)
for i in range(2000):
    os.unlink('/tmp/churn/%d.py' % i)
churn = time.perf_counter() - t
print(n, walk * 1000, churn * 1000)
`

async function walkOnce(opts: Opts): Promise<{ files: number; walkMs: number; churnMs: number }> {
  const sbx = await Sandbox.create({ ...opts, timeoutMs: 300_000 })
  try {
    await sbx.files.write('/tmp/walk.py', WALK)
    const out = await sbx.commands.run('python3 /tmp/walk.py', { timeoutMs: 300_000 })
    const [files, walkMs, churnMs] = out.stdout.trim().split(' ').map(Number)
    return { files: files!, walkMs: walkMs!, churnMs: churnMs! }
  } finally {
    await sbx.kill()
  }
}

// ------------------------------------------------------- snapshot / fork

const COUNTER = `python3 -c "
import os, time
n = 0
while True:
    n += 1
    open('/home/user/count.tmp', 'w').write(str(n))
    os.replace('/home/user/count.tmp', '/home/user/count')
    time.sleep(0.05)
"`

/** createSnapshot() of a counting sandbox, then a create from it → first command. */
async function snapshotOnce(
  w: WarrenFixture,
  opts: Opts,
): Promise<{ snapshotMs: number; createMs: number; resumedFrom: string | undefined }> {
  const sbx = await Sandbox.create({ ...opts, timeoutMs: 300_000 })
  try {
    await (await sbx.commands.run(COUNTER, { background: true })).disconnect()
    await sbx.commands.run('while [ ! -s /home/user/count ]; do sleep 0.05; done')
    const t0 = now()
    const snap = await sbx.createSnapshot()
    const snapshotMs = now() - t0
    const t1 = now()
    const copy = await Sandbox.create(snap.snapshotId, { ...opts, timeoutMs: 120_000 })
    await copy.commands.run('true')
    const createMs = now() - t1
    const got = await api(w, 'GET', `/sandboxes/${copy.sandboxId}`, { key: opts.apiKey })
    await copy.kill()
    return { snapshotMs, createMs, resumedFrom: (got.body as { resumedFrom?: string }).resumedFrom }
  } finally {
    await sbx.kill()
  }
}

async function snapshotPart(w: WarrenFixture, runc: Opts, gvisor: Opts): Promise<Figures> {
  const took = {
    runc: { snapshot: [] as number[], create: [] as number[] },
    gvisor: { snapshot: [] as number[], create: [] as number[] },
  }
  for (let i = 0; i < Math.min(RUNS, 5); i++) {
    for (const [k, opts] of [
      ['runc', runc],
      ['gvisor', gvisor],
    ] as const) {
      const r = await snapshotOnce(w, opts)
      // gVisor's copy continues the counter; runc's boots fresh on the files.
      const expected = k === 'gvisor' ? 'memory' : undefined
      if (r.resumedFrom !== expected)
        throw new Error(`a ${k} copy said resumedFrom ${r.resumedFrom}, not ${expected}`)
      took[k].snapshot.push(r.snapshotMs)
      took[k].create.push(r.createMs)
    }
  }
  const m = (k: 'runc' | 'gvisor', p: 'snapshot' | 'create') => median(took[k][p])
  console.log(
    '\n## snapshot and create from it (SDK; gVisor keeps the processes, runc the files)\n',
  )
  console.log('| measure | runc | gVisor | gVisor ÷ runc |')
  console.log('|---|---:|---:|---:|')
  for (const [label, p] of [
    ['createSnapshot()', 'snapshot'],
    ['create from the snapshot → first command', 'create'],
  ] as const)
    console.log(
      `| ${label} | ${ms(m('runc', p))} | ${ms(m('gvisor', p))} | ${(m('gvisor', p) / m('runc', p)).toFixed(2)}× |`,
    )
  return {
    runcSnapshotMs: m('runc', 'snapshot'),
    gvisorSnapshotMs: m('gvisor', 'snapshot'),
    gvisorOverRuncSnapshot: m('gvisor', 'snapshot') / m('runc', 'snapshot'),
    runcCreateFromSnapshotMs: m('runc', 'create'),
    gvisorCreateFromSnapshotMs: m('gvisor', 'create'),
    gvisorOverRuncCreateFromSnapshot: m('gvisor', 'create') / m('runc', 'create'),
  }
}

// ------------------------------------------------------- checkpoint / restore

/**
 * A plain gVisor container on the base template's files: python holding
 * `mb` MB of random bytes, counting up in a file on its disk every 50 ms
 * (so a restore can be seen to continue the same process).
 */
function holderScript(mb: number): string {
  return [
    'import os, time',
    // Random bytes, since a checkpoint image compresses what it can: one
    // random MB repeated is as incompressible to a 32 KB-window deflate.
    'c = os.urandom(1 << 20)',
    `b = bytearray(${mb} << 20)`,
    `for i in range(${mb}): b[i << 20 : (i + 1) << 20] = c`,
    'n = 0',
    'while True:',
    '    n += 1',
    "    open('/tmp/count.tmp', 'w').write(str(n))",
    "    os.replace('/tmp/count.tmp', '/tmp/count')",
    '    time.sleep(0.05)',
  ].join('\n')
}

interface CheckpointRig {
  once(mb: number): Promise<{ checkpointMs: number; restoreMs: number; imageMb: number }>
  /** Writing and reading back `mb` MB on the same disk: the floor for a memory image. */
  diskOnce(mb: number): { writeMs: number; readMs: number }
  close(): Promise<void>
}

function prepareCheckpoints(): CheckpointRig {
  const template = baseTemplate()
  const prefix = uniquePrefix()
  const dir = mkdtempSync(`/tmp/warren-${prefix}-`)
  chmodSync(dir, 0o711)
  const root = join(dir, 'runsc')
  let n = 0
  const live: string[] = []
  const logPath = join(dir, 'runsc.log')
  // Output to a file: a detached container inherits runsc's stdio, and a
  // pipe it holds would never reach its end.
  const runsc = (...args: string[]) => {
    const log = openSync(logPath, 'a')
    try {
      execFileSync(
        'runsc',
        ['--root', root, '--platform=ptrace', '--network=none', '--cpu-num-from-quota', ...args],
        { stdio: ['ignore', log, log] },
      )
    } catch (err) {
      throw new Error(`runsc ${args[0]} failed: ${readFileSync(logPath, 'utf8').slice(-2000)}`, {
        cause: err,
      })
    } finally {
      closeSync(log)
    }
  }
  return {
    async once(mb) {
      const k = n++
      const bundle = join(dir, `b${k}`)
      const rootfs = join(bundle, 'rootfs')
      const upper = join(bundle, 'upper')
      const work = join(bundle, 'work')
      for (const d of [rootfs, upper, work]) mkdirSync(d, { recursive: true })
      chownSync(upper, template.uidBase, template.uidBase)
      mountOverlay(template, { upper, work, rootfs })
      const spec = bareSpec(template, {
        hostname: 'holder',
        args: ['/usr/bin/python3', '-c', holderScript(mb)],
        rootfs,
        cgroupsPath: `/warren/${prefix}/h${k}`,
        memoryMb: mb + 512,
        readonlyMounts: [],
        isolation: 'gvisor',
      })
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec))
      const id = `${prefix}-h${k}`
      const restored = `${id}-r`
      live.push(id, restored)
      const count = join(upper, 'tmp/count')
      const counter = () => (existsSync(count) ? Number(readFileSync(count, 'utf8')) : 0)
      runsc('run', '--detach', '--bundle', bundle, id)
      for (let i = 0; counter() < 3; i++) {
        if (i > 1200 + mb * 4) throw new Error(`the ${mb} MB holder did not start`)
        await sleep(50)
      }
      const image = join(dir, `img${k}`)
      mkdirSync(image)
      const t0 = now()
      runsc('checkpoint', '--image-path', image, id)
      const checkpointMs = now() - t0
      const before = counter()
      const imageMb = Number(
        execFileSync('du', ['-sm', image], { encoding: 'utf8' }).split('\t')[0],
      )
      const t1 = now()
      runsc('restore', '--image-path', image, '--detach', '--bundle', bundle, restored)
      const restoreMs = now() - t1
      // The same process goes on counting from where it stopped.
      for (let i = 0; counter() <= before + 2; i++) {
        if (i > 600) throw new Error(`the restored ${mb} MB holder does not count on`)
        await sleep(50)
      }
      if (counter() > before + 1000) throw new Error('the restored holder started over')
      await run('runsc', ['--root', root, 'delete', '--force', restored])
      execFileSync('umount', [rootfs])
      rmSync(bundle, { recursive: true, force: true })
      rmSync(image, { recursive: true, force: true })
      return { checkpointMs, restoreMs, imageMb }
    },
    diskOnce(mb) {
      const file = join(dir, 'disk.bin')
      const data = Buffer.alloc(mb * 1024 * 1024, 1)
      const t0 = now()
      writeFileSync(file, data)
      const writeMs = now() - t0
      // Dropped from the page cache, so the read comes from the disk as a restore's would… mostly.
      execFileSync('sh', ['-c', 'sync; echo 1 > /proc/sys/vm/drop_caches'])
      const t1 = now()
      readFileSync(file)
      const readMs = now() - t1
      rmSync(file)
      return { writeMs, readMs }
    },
    async close() {
      for (const id of live) await run('runsc', ['--root', root, 'delete', '--force', id])
      for (let k = 0; k < n; k++) await run('umount', [join(dir, `b${k}`, 'rootfs')])
      await cleanupHost(prefix, dir)
    },
  }
}

// ------------------------------------------------------- parts

async function createPart(w: WarrenFixture, runc: Opts, gvisor: Opts): Promise<Figures> {
  const floor = prepareFloor()
  try {
    const floorRuns: number[] = []
    for (let i = 0; i < RUNS; i++) floorRuns.push((await floor.once()).runc)
    const creates = { runc: [] as number[], gvisor: [] as number[] }
    // Taken in turn, after one of each to warm up, so both see the same machine.
    for (let i = 0; i < RUNS + 1; i++) {
      const r = await createAndRun(w, runc, 'runc')
      const g = await createAndRun(w, gvisor, 'gvisor')
      if (i === 0) continue
      creates.runc.push(r)
      creates.gvisor.push(g)
    }
    const floorMed = median(floorRuns)
    console.log('\n## create → first command (SDK, unchanged)\n')
    console.log('| measure | median | p95 | ÷ floor |')
    console.log('|---|---:|---:|---:|')
    console.log(
      `| floor: raw \`runc run /bin/true\` | ${ms(floorMed)} | ${ms(pct(floorRuns, 95))} | 1.00× |`,
    )
    for (const k of ['runc', 'gvisor'] as const)
      console.log(
        `| ${k} sandbox | ${ms(median(creates[k]))} | ${ms(pct(creates[k], 95))} | ${(median(creates[k]) / floorMed).toFixed(2)}× |`,
      )
    return {
      floorMs: floorMed,
      runcCreateRunMs: median(creates.runc),
      gvisorCreateRunMs: median(creates.gvisor),
      runcCreateRunOverFloor: median(creates.runc) / floorMed,
      gvisorCreateRunOverFloor: median(creates.gvisor) / floorMed,
      gvisorOverRuncCreateRun: median(creates.gvisor) / median(creates.runc),
    }
  } finally {
    await floor.close()
  }
}

async function walkPart(runc: Opts, gvisor: Opts): Promise<Figures> {
  const walks = { runc: [] as number[], gvisor: [] as number[] }
  const churns = { runc: [] as number[], gvisor: [] as number[] }
  let files = 0
  for (let i = 0; i < 3; i++) {
    for (const [k, opts] of [
      ['runc', runc],
      ['gvisor', gvisor],
    ] as const) {
      const w = await walkOnce(opts)
      walks[k].push(w.walkMs)
      churns[k].push(w.churnMs)
      files = w.files
    }
  }
  console.log(`\n## syscall-heavy workload (median of 3; ${files} files under /usr)\n`)
  console.log('| workload | runc | gVisor | gVisor ÷ runc |')
  console.log('|---|---:|---:|---:|')
  console.log(
    `| walk /usr, lstat every file | ${ms(median(walks.runc))} | ${ms(median(walks.gvisor))} | ${(median(walks.gvisor) / median(walks.runc)).toFixed(2)}× |`,
  )
  console.log(
    `| 2000 small files: write, stat, unlink | ${ms(median(churns.runc))} | ${ms(median(churns.gvisor))} | ${(median(churns.gvisor) / median(churns.runc)).toFixed(2)}× |`,
  )
  return {
    runcWalkMs: median(walks.runc),
    gvisorWalkMs: median(walks.gvisor),
    gvisorOverRuncWalk: median(walks.gvisor) / median(walks.runc),
    gvisorOverRuncFileChurn: median(churns.gvisor) / median(churns.runc),
  }
}

async function checkpointPart(): Promise<Figures> {
  const rig = prepareCheckpoints()
  try {
    console.log('\n## checkpoint and restore by memory size (plain gVisor container)\n')
    console.log(
      '| memory | image | checkpoint | write as a file | ÷ | restore | read the file | ÷ |',
    )
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|')
    const figures: Figures = {}
    for (const mb of SIZES) {
      const c = await rig.once(mb)
      const d = rig.diskOnce(mb)
      console.log(
        `| ${mb} MB | ${c.imageMb} MB | ${ms(c.checkpointMs)} | ${ms(d.writeMs)} | ${(c.checkpointMs / d.writeMs).toFixed(2)}× | ${ms(c.restoreMs)} | ${ms(d.readMs)} | ${(c.restoreMs / d.readMs).toFixed(2)}× |`,
      )
      figures[`checkpoint${mb}MbMs`] = c.checkpointMs
      figures[`restore${mb}MbMs`] = c.restoreMs
      figures[`checkpoint${mb}MbOverFileWrite`] = c.checkpointMs / d.writeMs
      figures[`restore${mb}MbOverFileRead`] = c.restoreMs / d.readMs
    }
    return figures
  } finally {
    await rig.close()
  }
}

// ------------------------------------------------------- main

async function main(): Promise<Figures> {
  if (!existsSync('/usr/bin/runsc') && !existsSync('/usr/sbin/runsc'))
    throw new Error('runsc is not installed (scripts/setup.sh installs it)')
  const figures: Figures = {}
  if (PARTS.has('create') || PARTS.has('walk') || PARTS.has('snapshot')) {
    const warren = await startWarren({ env: { WARREN_MEMORY_CAPACITY_MB: '60000' } })
    try {
      const gvisor: Opts = { ...warren.sdk, apiKey: await gvisorTeamKey(warren) }
      if (PARTS.has('create')) Object.assign(figures, await createPart(warren, warren.sdk, gvisor))
      if (PARTS.has('walk')) Object.assign(figures, await walkPart(warren.sdk, gvisor))
      if (PARTS.has('snapshot'))
        Object.assign(figures, await snapshotPart(warren, warren.sdk, gvisor))
    } finally {
      await warren.teardown(process.env.WARREN_BENCH_KEEP_LOG === '1')
    }
  }
  if (PARTS.has('checkpoint')) Object.assign(figures, await checkpointPart())
  return figures
}

await runBenchmark('gvisor', values.json, main)
