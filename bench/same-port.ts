// What serving TLS on the edge's port costs plain HTTP: the same handler
// behind a plain http.Server (the baseline) and behind the same-port
// listener (first-byte sniff), and https through the same port vs Node's
// own https.Server; wrk on loopback, the runs interleaved (the machine may
// be shared), medians of several. No sandboxes, no root.
//   npx tsx bench/same-port.ts [--rounds 7] [--seconds 3]
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type RequestListener, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { parseArgs, promisify } from 'node:util'
import { edgeCertificates } from '../packages/proxy/src/tls/certificates.js'
import { acceptTlsToo } from '../packages/proxy/src/tls/same-port.js'
import { ensurePackages } from './lib/packages.js'
import { median } from './lib/stats.js'

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '7' }, seconds: { type: 'string', default: '3' } },
})
const ROUNDS = Number(values.rounds)
const SECONDS = Number(values.seconds)
const run = promisify(execFile)
const HOST = '8000-abcdefghij0123456789.localhost'

interface Sample {
  rps: number
  /** This process's CPU time (user + system) per request served, µs: less sensitive than rps to a busy machine. */
  cpuUs: number
}

// wrk runs as a child process: asynchronously, so this process keeps serving.
async function wrk(url: string, newConnections: boolean): Promise<Sample> {
  const args = ['-t1', '-c16', `-d${SECONDS}s`, url]
  if (newConnections) args.unshift('-H', 'Connection: close')
  const cpu = process.cpuUsage()
  const { stdout } = await run('wrk', args, { encoding: 'utf8' })
  const used = process.cpuUsage(cpu)
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1])
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]),
    cpuUs: (used.user + used.system) / requests,
  }
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

async function main() {
  ensurePackages(['wrk'])
  const dataDir = mkdtempSync('/tmp/warren-bench-same-port-')
  const ok: RequestListener = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('ok')
  }
  const { tlsOptions, serves } = await edgeCertificates({ dataDir, domain: 'localhost' })
  const plain = createServer(ok)
  const samePort = createServer(ok)
  acceptTlsToo(samePort, tlsOptions, serves)
  const https = createHttpsServer(tlsOptions, ok)
  const [plainPort, samePortPort, httpsPort] = [
    await listen(plain),
    await listen(samePort),
    await listen(https),
  ]
  const cases = [
    [
      'http, keep-alive',
      `http://127.0.0.1:${plainPort}/`,
      `http://127.0.0.1:${samePortPort}/`,
      false,
    ],
    [
      'http, a connection per request',
      `http://127.0.0.1:${plainPort}/`,
      `http://127.0.0.1:${samePortPort}/`,
      true,
    ],
    [
      'https, keep-alive',
      `https://${HOST}:${httpsPort}/`,
      `https://${HOST}:${samePortPort}/`,
      false,
    ],
    [
      'https, a connection per request',
      `https://${HOST}:${httpsPort}/`,
      `https://${HOST}:${samePortPort}/`,
      true,
    ],
  ] as const
  try {
    console.log(
      `\nSame-port TLS (wrk, 1 thread, 16 connections, ${SECONDS} s, ${ROUNDS} interleaved rounds, medians)`,
    )
    console.log(
      '| traffic | baseline req/s | same port req/s | ÷ baseline | baseline CPU/req | same port CPU/req | ÷ baseline |',
    )
    console.log('|---|---|---|---|---|---|---|')
    for (const [name, baseUrl, url, fresh] of cases) {
      const base: Sample[] = []
      const same: Sample[] = []
      for (let i = 0; i < ROUNDS; i++) {
        base.push(await wrk(baseUrl, fresh))
        same.push(await wrk(url, fresh))
      }
      const [bRps, sRps] = [median(base.map((x) => x.rps)), median(same.map((x) => x.rps))]
      const [bCpu, sCpu] = [median(base.map((x) => x.cpuUs)), median(same.map((x) => x.cpuUs))]
      console.log(
        `| ${name} | ${bRps.toFixed(0)} | ${sRps.toFixed(0)} | ${(sRps / bRps).toFixed(2)} | ${bCpu.toFixed(1)} µs | ${sCpu.toFixed(1)} µs | ${(sCpu / bCpu).toFixed(2)} |`,
      )
    }
    console.log("\n(baseline: a plain http.Server for http, Node's https.Server for https)")
  } finally {
    for (const s of [plain, samePort, https]) {
      s.closeAllConnections()
      s.close()
    }
    rmSync(dataDir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
