// What a byte relay can carry on this machine: Warren's against C relays.
// A 256 MiB download from a TCP source (python3, its own process) to this
// process, direct and through one and two relays in a row (one: the edge or
// the egress proxy; two: a tunnel's edge and envd), each kind of relay in
// its own processes: Warren's (the proxies' `splice` with large reads both
// ways), socat (C, read and write, 1 MiB buffer), and HAProxy in TCP mode
// copying, then splicing (splice(2): the kernel moves the bytes, no copy
// through the relay's memory). Transfers taken in turn, so drift on the
// machine hits every path alike; each is a ratio of the same round's direct.
// Loopback only. Installs socat and haproxy if missing.
//   npm run bench -- relays [--rounds 5] [--json]
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { freePort } from '../tests/helpers/node-fixture.js'
import { ensurePackages } from './lib/packages.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median } from './lib/stats.js'

const values = benchArgs({ rounds: { type: 'string', default: '5' } })
const ROUNDS = Number(values.rounds)
const TRANSFER = 256 << 20

/** A TCP server sending TRANSFER bytes to each client in 1 MiB writes, then closing. */
const SOURCE = (port: number) => `
import socket, threading
chunk = b'\\x07' * (1 << 20)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', ${port}))
srv.listen(16)
print('listening', flush=True)
def send(c):
    try:
        for _ in range(${TRANSFER >> 20}):
            c.sendall(chunk)
    except OSError:
        pass  # the bench's probe for the port closes at once
    finally:
        c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=send, args=(c,), daemon=True).start()
`

/** Warren's byte relay as the proxies run it, in a process of its own. */
const WARREN_RELAY = (listenPort: number, toPort: number) => `
import { createServer } from 'node:net'
import { splice } from '${join(import.meta.dirname, '../packages/shared/dist/proxy/forward.js')}'
import { bulkReads } from '${join(import.meta.dirname, '../packages/shared/dist/proxy/bulk-reads.js')}'
import { dialOnce } from '${join(import.meta.dirname, '../packages/shared/dist/proxy/dial.js')}'
createServer((a) => {
  a.on('error', () => a.destroy())
  const reads = bulkReads()
  dialOnce('127.0.0.1', ${toPort}, 10000, reads.onread).then(
    (b) => splice(a, b, undefined, reads),
    () => a.destroy(),
  )
}).listen(${listenPort}, '127.0.0.1', () => console.log('listening'))
`

const HAPROXY = (listenPort: number, toPort: number, spliced: boolean) => `
global
  maxconn 64
  tune.bufsize 1048576
  tune.pipesize 1048576
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
${spliced ? '  option splice-request\n  option splice-response\n' : ''}frontend f
  bind 127.0.0.1:${listenPort}
  default_backend b
backend b
  server s 127.0.0.1:${toPort}
`

/** Starts a process and waits until `port` accepts (bounded). */
async function start(cmd: string, args: string[], port: number): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${cmd} exited ${child.exitCode}`)
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return child
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  throw new Error(`${cmd} never listened on ${port}`)
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve()
  return new Promise((r) => {
    child.once('exit', () => r())
    child.kill('SIGKILL')
  })
}

/** One download of TRANSFER bytes from `port`, read into one reused buffer; MiB/s. */
function download(port: number): Promise<number> {
  const buffer = Buffer.allocUnsafe(1 << 20)
  return new Promise((resolve, reject) => {
    const t = performance.now()
    let got = 0
    const s = connect({
      port,
      host: '127.0.0.1',
      onread: {
        buffer,
        callback: (n) => {
          got += n
          return true
        },
      },
    })
    s.on('error', reject)
    s.on('close', () =>
      got === TRANSFER
        ? resolve(TRANSFER / 2 ** 20 / ((performance.now() - t) / 1000))
        : reject(new Error(`port ${port}: got ${got} of ${TRANSFER} bytes`)),
    )
  })
}

type Kind = 'warren' | 'socat' | 'haproxy' | 'haproxySplice'

async function relay(kind: Kind, dir: string, listen: number, to: number): Promise<ChildProcess> {
  switch (kind) {
    case 'warren': {
      const file = join(dir, `relay-${listen}.mjs`)
      writeFileSync(file, WARREN_RELAY(listen, to))
      return start(process.execPath, [file], listen)
    }
    case 'socat':
      return start(
        'socat',
        [
          '-b',
          String(1 << 20),
          `TCP-LISTEN:${listen},bind=127.0.0.1,reuseaddr,fork`,
          `TCP:127.0.0.1:${to}`,
        ],
        listen,
      )
    default: {
      const file = join(dir, `haproxy-${listen}.cfg`)
      writeFileSync(file, HAPROXY(listen, to, kind === 'haproxySplice'))
      return start('haproxy', ['-db', '-f', file], listen)
    }
  }
}

const KINDS: Kind[] = ['warren', 'socat', 'haproxy', 'haproxySplice']
const LABELS: Record<Kind, string> = {
  warren: "Warren's relay (Node)",
  socat: 'socat (C, copies)',
  haproxy: 'HAProxy (C, copies)',
  haproxySplice: 'HAProxy (C, splice)',
}

async function main(): Promise<Figures> {
  ensurePackages(['socat', 'haproxy'])
  const dir = mkdtempSync('/tmp/warren-bench-relays-')
  const procs: ChildProcess[] = []
  try {
    const sourcePort = await freePort()
    const sourceFile = join(dir, 'source.py')
    writeFileSync(sourceFile, SOURCE(sourcePort))
    procs.push(await start('python3', [sourceFile], sourcePort))
    // Per kind, one relay to the source and a second in front of the first.
    const ports = new Map<Kind, { one: number; two: number }>()
    for (const kind of KINDS) {
      const one = await freePort()
      procs.push(await relay(kind, dir, one, sourcePort))
      const two = await freePort()
      procs.push(await relay(kind, dir, two, one))
      ports.set(kind, { one, two })
    }
    const ratios = new Map<string, number[]>()
    const rates = new Map<string, number[]>()
    const note = (key: string, rate: number, direct: number) => {
      rates.set(key, [...(rates.get(key) ?? []), rate])
      ratios.set(key, [...(ratios.get(key) ?? []), rate / direct])
    }
    await download(sourcePort) // warms the source and the page cache of its chunk
    for (let round = 0; round < ROUNDS; round++) {
      const direct = await download(sourcePort)
      rates.set('direct', [...(rates.get('direct') ?? []), direct])
      for (const kind of KINDS) {
        const p = ports.get(kind)!
        note(`${kind}One`, await download(p.one), direct)
        note(`${kind}Two`, await download(p.two), direct)
      }
    }
    console.log(
      `\n256 MiB downloads, ${ROUNDS} rounds; medians (each ratio against the same round's direct download)`,
    )
    console.log('| path | MiB/s | ÷ direct |')
    console.log('|---|---|---|')
    console.log(`| direct TCP | ${median(rates.get('direct')!).toFixed(0)} | 1.00× |`)
    const figures: Figures = { directMiBps: median(rates.get('direct')!) }
    for (const kind of KINDS) {
      for (const [hops, label] of [
        ['One', 'one'],
        ['Two', 'two in a row'],
      ] as const) {
        const key = `${kind}${hops}`
        const rate = median(rates.get(key)!)
        const ratio = median(ratios.get(key)!)
        console.log(`| ${LABELS[kind]}, ${label} | ${rate.toFixed(0)} | ${ratio.toFixed(2)}× |`)
        figures[`${key}MiBps`] = rate
        figures[`${key}OverDirect`] = ratio
      }
    }
    return figures
  } finally {
    await Promise.all(procs.map(stop))
    rmSync(dir, { recursive: true, force: true })
  }
}

await runBenchmark('relays', values.json, main)
