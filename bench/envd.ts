// Command round trip, tunnel throughput, envd start.
// One table comparing envd against baselines measured in the same run.
// Loopback only; every loop is bounded. Run as root:
//   npm run bench -- envd [--json]
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, createServer, type Server } from 'node:net'
import WebSocket from 'ws'
import { BUNDLE, ensureBundle, freePort, initEnvd, sdk, startEnvd } from '../tests/envd/harness.js'
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

function directTransfer(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = now()
    let got = 0
    const s = connect(port, '127.0.0.1')
    s.on('data', (d) => (got += d.length))
    s.on('error', reject)
    s.on('close', () => (got === TRANSFER ? resolve(now() - t) : reject(new Error(`got ${got}`))))
  })
}

function tunnelTransfer(envdPort: number, token: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = now()
    let got = 0
    const ws = new WebSocket(`ws://127.0.0.1:${envdPort}/tunnel?host=127.0.0.1&port=${port}`, {
      headers: { 'X-Access-Token': token },
      perMessageDeflate: false,
    })
    ws.on('message', (d: Buffer) => (got += d.length))
    ws.on('error', reject)
    ws.on('close', () => (got === TRANSFER ? resolve(now() - t) : reject(new Error(`got ${got}`))))
  })
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

  // 2. 256 MiB through the tunnel vs a direct loopback connection.
  const { server, port } = await sourceServer()
  const directMs = median([
    await directTransfer(port),
    await directTransfer(port),
    await directTransfer(port),
  ])
  const tunnelMs = median([
    await tunnelTransfer(envd.port, token, port),
    await tunnelTransfer(envd.port, token, port),
    await tunnelTransfer(envd.port, token, port),
  ])
  const mibs = (ms: number) => (256 / (ms / 1000)).toFixed(0)
  rows.push([
    'tunnel 256 MiB throughput',
    `${mibs(tunnelMs)} MiB/s`,
    `${mibs(directMs)} MiB/s (direct TCP)`,
    `${(directMs / tunnelMs).toFixed(2)}x`,
  ])
  const peakRss = peakRssKiB(envd.pid)
  rows.push(['envd peak RSS during the run', `${(peakRss / 1024).toFixed(0)} MiB`, '', ''])
  server.close()
  const idleAfterUse = privateKiB(envd.pid)
  await envd.stop()

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
    startMs: envdStart,
    bareNodeStartMs: bareStart,
    startOverBareNode: envdStart / bareStart,
    peakRssMiB: peakRss / 1024,
    idlePrivateFreshMiB: idleFresh / 1024,
    idlePrivateAfterRunMiB: idleAfterUse / 1024,
  }
}

await runBenchmark('envd', values.json, main)
