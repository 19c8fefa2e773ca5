// Command round trip, tunnel throughput, envd start.
// One table comparing envd against baselines measured in the same run. The
// tunnel twice: to envd alone (a local envd, a TCP source on loopback), and
// the full path users get — client → edge proxy → envd in a runc sandbox of
// a `warren up` → a TCP server in that sandbox — each against direct TCP to
// the same server (for the full path: from the host to the sandbox's
// address), downloads and, on the full path, uploads too; and the CPU each
// relay spends per GiB. Loopback and the bench's own sandbox only; every
// loop is bounded. Run as root:
//   npm run bench -- envd [--json]
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { connect, createServer, type Server } from 'node:net'
import { Sandbox } from 'e2b'
import WebSocket from 'ws'
import { BUNDLE, ensureBundle, freePort, initEnvd, sdk, startEnvd } from '../tests/envd/harness.js'
import { api } from '../tests/helpers/api-client.js'
import { startWarren, type WarrenFixture } from '../tests/helpers/warren-fixture.js'
import { cpuMs, processGroup } from './lib/host.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median } from './lib/stats.js'

const values = benchArgs({})

const now = () => performance.now()

async function timeRuns(n: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < n + 3; i++) {
    const t = now()
    await fn()
    if (i >= 3) times.push(now() - t) // the first runs warm up
  }
  return median(times)
}

function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('true', { stdio: 'ignore' })
    p.once('error', reject)
    p.once('exit', () => resolve())
  })
}

const TRANSFER = 256 << 20
/** Transfers of each kind, taken in turn (direct, tunnel, direct, …) so that load drift hits both. */
const ROUNDS = 5
/** GiB through the tunnel in one measure's runs, for CPU per GiB. */
const GIB_MOVED = (ROUNDS * TRANSFER) / 2 ** 30

/** A TCP server that sends TRANSFER bytes to each client, then closes. */
async function sourceServer(): Promise<{ server: Server; port: number }> {
  const chunk = Buffer.alloc(1 << 20, 7)
  const server = createServer((s) => {
    s.on('error', () => {})
    let sent = 0
    const pump = () => {
      while (sent < TRANSFER) {
        sent += chunk.length
        if (!s.write(chunk)) return void s.once('drain', pump)
      }
      s.end()
    }
    pump()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return { server, port: (server.address() as { port: number }).port }
}

function directTransfer(port: number, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = now()
    let got = 0
    const s = connect(port, host)
    s.on('data', (d) => (got += d.length))
    s.on('error', reject)
    s.on('close', () => (got === TRANSFER ? resolve(now() - t) : reject(new Error(`got ${got}`))))
  })
}

function tunnelTransfer(
  envdPort: number,
  token: string,
  port: number,
  headers: Record<string, string> = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = now()
    let got = 0
    const ws = new WebSocket(`ws://127.0.0.1:${envdPort}/tunnel?host=127.0.0.1&port=${port}`, {
      headers: { 'X-Access-Token': token, ...headers },
      perMessageDeflate: false,
    })
    ws.on('message', (d: Buffer) => (got += d.length))
    ws.on('error', reject)
    ws.on('close', () => (got === TRANSFER ? resolve(now() - t) : reject(new Error(`got ${got}`))))
  })
}

const SANDBOX_SOURCE_PORT = 9000
/** In the sandbox: sends TRANSFER bytes to each client, then closes (on every address). */
const SANDBOX_SOURCE = `
import socket, threading
chunk = b'\\x07' * (1 << 20)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('0.0.0.0', ${SANDBOX_SOURCE_PORT}))
srv.listen(16)
def send(c):
    try:
        for _ in range(${TRANSFER >> 20}):
            c.sendall(chunk)
    finally:
        c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=send, args=(c,), daemon=True).start()
`

const SANDBOX_SINK_PORT = 9001
/** In the sandbox: reads TRANSFER bytes from each client, then answers one byte and closes. */
const SANDBOX_SINK = `
import socket, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('0.0.0.0', ${SANDBOX_SINK_PORT}))
srv.listen(16)
def sink(c):
    buf = bytearray(1 << 20)
    got = 0
    try:
        while got < ${TRANSFER}:
            n = c.recv_into(buf)
            if n == 0:
                return
            got += n
        c.sendall(b'k')
    finally:
        c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=sink, args=(c,), daemon=True).start()
`

/** Sends TRANSFER bytes in 1 MiB writes; a false from `write` waits for it to call `more`. */
function sendAll(write: (chunk: Buffer, more: () => void) => boolean): void {
  const chunk = Buffer.alloc(1 << 20, 7)
  let sent = 0
  const pump = () => {
    while (sent < TRANSFER) {
      sent += chunk.length
      if (!write(chunk, pump)) return
    }
  }
  pump()
}

/** Direct TCP upload of TRANSFER bytes to the sink, until its answer. */
function directUpload(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = now()
    const s = connect(port, host)
    s.on('error', reject)
    s.once('connect', () =>
      sendAll((chunk, more) => {
        if (s.write(chunk)) return true
        s.once('drain', more)
        return false
      }),
    )
    s.once('data', () => {
      resolve(now() - t)
      s.destroy()
    })
  })
}

/** The same upload through the tunnel (1 MiB messages, kept under 4 MiB unsent). */
function tunnelUpload(
  proxyPort: number,
  token: string,
  port: number,
  headers: Record<string, string>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = now()
    const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}/tunnel?host=127.0.0.1&port=${port}`, {
      headers: { 'X-Access-Token': token, ...headers },
      perMessageDeflate: false,
    })
    ws.on('error', reject)
    // Paused above 4 MiB unsent, resumed by the send that leaves it under 1 MiB.
    let paused = false
    ws.once('open', () =>
      sendAll((chunk, more) => {
        ws.send(chunk, () => {
          if (paused && ws.bufferedAmount < 1 << 20) {
            paused = false
            more()
          }
        })
        paused = ws.bufferedAmount >= 4 << 20
        return !paused
      }),
    )
    ws.once('message', () => {
      resolve(now() - t)
      ws.terminate()
    })
  })
}

/** Until a connection to host:port is accepted (bounded: about 10 s). */
async function listening(host: string, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host)
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`nothing listening on ${host}:${port}`)
}

/**
 * The tunnel through a `warren up`'s edge proxy to envd in a sandbox, and
 * direct TCP from the host to the same server in that sandbox; runs taken in
 * turn so that drift on the machine hits both alike.
 */
async function fullPath(): Promise<{
  directMs: number
  tunnelMs: number
  directUpMs: number
  tunnelUpMs: number
  proxyCpuMsPerGiB: number
  envdCpuMsPerGiB: number
  proxyUpCpuMsPerGiB: number
  envdUpCpuMsPerGiB: number
}> {
  let w: WarrenFixture | undefined
  let sbx: Sandbox | undefined
  try {
    w = await startWarren()
    sbx = await Sandbox.create({ ...w.sdk, timeoutMs: 600_000, metadata: { bench: 'envd' } })
    const res = await api(w, 'GET', `/sandboxes/${sbx.sandboxId}`)
    const token = (res.body as { envdAccessToken?: string }).envdAccessToken
    if (res.status !== 200 || !token) throw new Error(`GET /sandboxes: ${res.status} ${res.text}`)
    await sbx.files.write('/tmp/source.py', SANDBOX_SOURCE)
    await sbx.commands.run('python3 /tmp/source.py', { background: true })
    await sbx.files.write('/tmp/sink.py', SANDBOX_SINK)
    await sbx.commands.run('python3 /tmp/sink.py', { background: true })
    const ip = (await sbx.commands.run('hostname -I')).stdout.trim().split(/\s+/)[0]!
    await listening(ip, SANDBOX_SOURCE_PORT)
    await listening(ip, SANDBOX_SINK_PORT)
    const edge = {
      port: w.ports.proxy,
      headers: { 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '49983' },
    }
    const direct: number[] = []
    const tunnel: number[] = []
    // CPU of the two relays: the `warren up` with its proxy workers (edge and
    // node proxy), and envd in the sandbox.
    const relays = () => [processGroup(w!.pid()!, 'worker.js'), [sandboxEnvdPid(sbx!.sandboxId)]]
    const relayCpu = async (transfer: () => Promise<number>, into: number[], cpu: number[]) => {
      const pids = relays()
      const before = pids.map(groupCpuMs)
      into.push(await transfer())
      pids.forEach((group, k) => {
        cpu[k]! += groupCpuMs(group) - before[k]!
      })
    }
    const downCpu = [0, 0]
    for (let i = 0; i < ROUNDS; i++) {
      direct.push(await directTransfer(SANDBOX_SOURCE_PORT, ip))
      await relayCpu(
        () => tunnelTransfer(edge.port, token, SANDBOX_SOURCE_PORT, edge.headers),
        tunnel,
        downCpu,
      )
    }
    const directUp: number[] = []
    const tunnelUp: number[] = []
    const upCpu = [0, 0]
    for (let i = 0; i < ROUNDS; i++) {
      directUp.push(await directUpload(SANDBOX_SINK_PORT, ip))
      await relayCpu(
        () => tunnelUpload(edge.port, token, SANDBOX_SINK_PORT, edge.headers),
        tunnelUp,
        upCpu,
      )
    }
    return {
      directMs: median(direct),
      tunnelMs: median(tunnel),
      directUpMs: median(directUp),
      tunnelUpMs: median(tunnelUp),
      proxyCpuMsPerGiB: downCpu[0]! / GIB_MOVED,
      envdCpuMsPerGiB: downCpu[1]! / GIB_MOVED,
      proxyUpCpuMsPerGiB: upCpu[0]! / GIB_MOVED,
      envdUpCpuMsPerGiB: upCpu[1]! / GIB_MOVED,
    }
  } finally {
    await sbx?.kill().catch(() => {})
    await w?.teardown().catch(() => {})
  }
}

/** CPU ms the processes have used so far (NaN when one is gone). */
function groupCpuMs(pids: (number | undefined)[]): number {
  return pids.reduce<number>((sum, pid) => sum + (cpuMs(pid) ?? Number.NaN), 0)
}

/** The host pid of envd in the sandbox `id` (its cgroup names the sandbox), if found. */
function sandboxEnvdPid(id: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (!cmd.includes('envd.mjs') || cmd.includes('tini')) continue
      if (readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(id)) return Number(entry)
    } catch {
      // gone meanwhile
    }
  }
  return undefined
}

function privateKiB(pid: number): number {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0)
  return field('Private_Clean') + field('Private_Dirty')
}

function peakRssKiB(pid: number): number {
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
}

/** Spawn to "listening" on stdout, for envd and for a bare node HTTP server. */
async function startToListening(
  args: string[],
  marker: string,
): Promise<{ ms: number; pid: number; kill: () => Promise<void> }> {
  const t = now()
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const ms = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      if (out.includes(marker)) resolve(now() - t)
    })
    child.once('exit', () => reject(new Error(`exited before listening: ${out}`)))
  })
  return {
    ms,
    pid: child.pid!,
    kill: () =>
      new Promise((r) => {
        child.removeAllListeners('exit')
        child.once('exit', () => r())
        child.kill('SIGTERM')
      }),
  }
}

async function main(): Promise<Figures> {
  ensureBundle()
  const rows: [string, string, string, string][] = []

  // 1. commands.run("true") through the SDK vs spawning `true` directly.
  const envd = await startEnvd()
  const token = 'bench-token'
  await initEnvd(envd, { defaultUser: 'user', accessToken: token })
  const sbx = sdk(envd, token)
  const viaEnvd = await timeRuns(50, () => sbx.commands.run('true'))
  const direct = await timeRuns(50, spawnTrue)
  rows.push([
    'commands.run("true") median',
    `${viaEnvd.toFixed(2)} ms`,
    `${direct.toFixed(2)} ms (spawn true)`,
    `${(viaEnvd / direct).toFixed(1)}x`,
  ])

  // 2. 256 MiB through the tunnel vs a direct loopback connection (medians).
  const { server, port } = await sourceServer()
  const directRuns: number[] = []
  const tunnelRuns: number[] = []
  let envdCpu = 0
  for (let i = 0; i < ROUNDS; i++) {
    directRuns.push(await directTransfer(port))
    const cpu = cpuMs(envd.pid) ?? Number.NaN
    tunnelRuns.push(await tunnelTransfer(envd.port, token, port))
    envdCpu += (cpuMs(envd.pid) ?? Number.NaN) - cpu
  }
  const directMs = median(directRuns)
  const tunnelMs = median(tunnelRuns)
  const mibs = (ms: number) => (256 / (ms / 1000)).toFixed(0)
  rows.push([
    'tunnel 256 MiB, envd alone',
    `${mibs(tunnelMs)} MiB/s`,
    `${mibs(directMs)} MiB/s (direct TCP)`,
    `${(directMs / tunnelMs).toFixed(2)}x`,
  ])
  const peakRss = peakRssKiB(envd.pid)
  server.close()
  const idleAfterUse = privateKiB(envd.pid)
  await envd.stop()
  // The same transfer the way users make it, once the local envd is gone.
  const full = await fullPath()
  rows.push([
    'tunnel 256 MiB, full path (edge → envd)',
    `${mibs(full.tunnelMs)} MiB/s`,
    `${mibs(full.directMs)} MiB/s (direct TCP)`,
    `${(full.directMs / full.tunnelMs).toFixed(2)}x`,
  ])
  rows.push([
    'tunnel 256 MiB upload, full path',
    `${mibs(full.tunnelUpMs)} MiB/s`,
    `${mibs(full.directUpMs)} MiB/s (direct TCP)`,
    `${(full.directUpMs / full.tunnelUpMs).toFixed(2)}x`,
  ])
  const cpuRow = (what: string, ms: number) =>
    rows.push([`${what} CPU per GiB tunnelled`, `${ms.toFixed(0)} ms`, '', ''])
  cpuRow('envd (alone)', envdCpu / GIB_MOVED)
  cpuRow('full path: `warren up` and its proxy workers', full.proxyCpuMsPerGiB)
  cpuRow('full path: envd in the sandbox', full.envdCpuMsPerGiB)
  cpuRow('upload: `warren up` and its proxy workers', full.proxyUpCpuMsPerGiB)
  cpuRow('upload: envd in the sandbox', full.envdUpCpuMsPerGiB)
  rows.push(['envd peak RSS during the run', `${(peakRss / 1024).toFixed(0)} MiB`, '', ''])

  // 3. Start-to-listening and idle private memory of a fresh envd.
  const envdStarts: number[] = []
  const bareStarts: number[] = []
  let idleFresh = 0
  for (let i = 0; i < 7; i++) {
    const p = await freePort()
    const e = await startToListening(
      [BUNDLE, '--host', '127.0.0.1', '--port', String(p)],
      '"listening"',
    )
    envdStarts.push(e.ms)
    if (i === 0) {
      await new Promise((r) => setTimeout(r, 1000))
      idleFresh = privateKiB(e.pid)
    }
    await e.kill()
    const bare = `require('http').createServer().listen(${p}, '127.0.0.1', () => console.log('listening'))`
    const b = await startToListening(['-e', bare], 'listening')
    bareStarts.push(b.ms)
    await b.kill()
  }
  const envdStart = median(envdStarts)
  const bareStart = median(bareStarts)
  rows.push([
    'start-to-listening median (7 starts)',
    `${envdStart.toFixed(1)} ms`,
    `${bareStart.toFixed(1)} ms (bare node http)`,
    `${(envdStart / bareStart).toFixed(2)}x`,
  ])
  rows.push(['idle private memory, fresh', `${(idleFresh / 1024).toFixed(1)} MiB`, '', ''])
  rows.push([
    'idle private memory, after the run',
    `${(idleAfterUse / 1024).toFixed(1)} MiB`,
    '',
    '',
  ])

  const widths = [0, 1, 2, 3].map((c) =>
    Math.max(...[['measure', 'envd', 'baseline', 'ratio'], ...rows].map((r) => r[c]!.length)),
  )
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c]!)).join(' | ')} |`
  console.log(line(['measure', 'envd', 'baseline', 'ratio']))
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  for (const r of rows) console.log(line(r))
  return {
    commandRunMs: viaEnvd,
    spawnTrueMs: direct,
    commandRunOverSpawn: viaEnvd / direct,
    tunnelMiBps: 256 / (tunnelMs / 1000),
    directTcpMiBps: 256 / (directMs / 1000),
    tunnelOverDirectThroughput: directMs / tunnelMs,
    fullPathTunnelMiBps: 256 / (full.tunnelMs / 1000),
    fullPathDirectTcpMiBps: 256 / (full.directMs / 1000),
    fullPathTunnelOverDirectThroughput: full.directMs / full.tunnelMs,
    fullPathUploadTunnelMiBps: 256 / (full.tunnelUpMs / 1000),
    fullPathUploadDirectTcpMiBps: 256 / (full.directUpMs / 1000),
    fullPathUploadTunnelOverDirectThroughput: full.directUpMs / full.tunnelUpMs,
    envdCpuMsPerGiB: envdCpu / GIB_MOVED,
    fullPathProxyCpuMsPerGiB: full.proxyCpuMsPerGiB,
    fullPathEnvdCpuMsPerGiB: full.envdCpuMsPerGiB,
    fullPathUploadProxyCpuMsPerGiB: full.proxyUpCpuMsPerGiB,
    fullPathUploadEnvdCpuMsPerGiB: full.envdUpCpuMsPerGiB,
    startMs: envdStart,
    bareNodeStartMs: bareStart,
    startOverBareNode: envdStart / bareStart,
    peakRssMiB: peakRss / 1024,
    idlePrivateFreshMiB: idleFresh / 1024,
    idlePrivateAfterRunMiB: idleAfterUse / 1024,
  }
}

await runBenchmark('envd', values.json, main)
