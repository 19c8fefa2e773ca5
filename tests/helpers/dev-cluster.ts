// `warren dev-cluster` as the tests run it: the real command in a child
// process (private PostgreSQL, API replicas, nodes and an edge proxy, each a
// process of its own) with a prefix, address pool and directory of the
// test's, its banner parsed; stop() is its Ctrl-C, and a teardown that also
// proves nothing of it is left on the host.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { createNode } from '@warren/orchestrator'
import { createLogger, loadOrchestratorConfig } from '@warren/shared'
import { splitPool } from '../../packages/cli/src/lib/pool-split.js'
import { postgresBinaries } from '../../packages/cli/src/lib/private-postgres.js'
import { CLI } from './cli.js'
import { cleanupHost, freePort, mountsUnder, TEMPLATES_DIR, uniquePool } from './node-fixture.js'

export interface DevClusterProcess {
  name: string
  pid: number
  url: string
  /** An API's internal RPC, a node's node proxy. */
  internalUrl?: string
}

export interface RunningDevCluster {
  dir: string
  prefix: string
  nodes: number
  /** E2B_* variables (and NODE_EXTRA_CA_CERTS) from its banner. */
  env: Record<string, string>
  /** Its PostgreSQL, with the password (the banner masks it). */
  databaseUrl: string
  sdk: { apiUrl: string; sandboxUrl: string; apiKey: string }
  processes: DevClusterProcess[]
  child: ChildProcess
  output(): string
  /**
   * What a node SIGKILLed by a test left on the host, removed as its next
   * start would: a node on its data dir adopts its sandboxes, kills them and
   * stops.
   */
  reapNode(n: number): Promise<void>
  /** Ctrl-C; resolves with its exit code and everything it printed. */
  stop(): Promise<{ code: number | null; output: string }>
  /** Stops it if still running (SIGKILL of what is left), then checks and tidies the host. */
  teardown(): Promise<void>
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export async function startDevCluster(
  opts: { apis?: number; nodes?: number; env?: Record<string, string> } = {},
) {
  const nodes = opts.nodes ?? 2
  const dir = mkdtempSync('/tmp/warren-devc-')
  const alnum = 'abcdefghijklmnopqrstuvwxyz0123456789'
  const prefix = `c${[...randomBytes(2)].map((b) => alnum[b % alnum.length]).join('')}`
  const pool = uniquePool()
  const child = spawn(
    process.execPath,
    [
      CLI,
      'dev-cluster',
      '--dir',
      dir,
      '--prefix',
      prefix,
      '--address-pool',
      pool,
      '--apis',
      String(opts.apis ?? 2),
      '--nodes',
      String(nodes),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } },
  )
  let out = ''
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()))
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()))
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )

  const teardownHost = async () => {
    const errors: unknown[] = []
    for (let n = 1; n <= nodes; n++) {
      await cleanupHost(`${prefix}${n}`, join(dir, `node-${n}`), []).catch((e) => errors.push(e))
    }
    const pgData = join(dir, 'postgres', 'data')
    if (existsSync(join(pgData, 'postmaster.pid'))) {
      errors.push(new Error('PostgreSQL still running'))
      const pgCtl = join(postgresBinaries(), 'pg_ctl')
      execFileSync(
        'runuser',
        ['-u', 'postgres', '--', pgCtl, '-D', pgData, '-m', 'immediate', 'stop'],
        {
          stdio: 'ignore',
        },
      )
    }
    if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true })
    if (errors.length)
      throw new AggregateError(errors, `dev cluster teardown: ${errors.map(String).join('; ')}`)
  }

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`dev-cluster did not start:\n${out}`)),
        240_000,
      )
      const check = () => {
        if (/Ctrl-C kills/.test(out)) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout?.on('data', check)
      void exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`dev-cluster exited ${code}:\n${out}`))
      })
    })
  } catch (err) {
    child.kill('SIGINT')
    await exited
    await teardownHost().catch(() => {})
    throw err
  }

  const env = Object.fromEntries(
    [...out.matchAll(/^\s+export (\w+)=(\S+)/gm)].map((m) => [m[1] as string, m[2] as string]),
  )
  const processes = [
    ...out.matchAll(
      /^\s+(node-\d+|api-\d+|proxy)\s+pid (\d+)\s+(\S+)(?:\s+\((?:internal|node proxy) (\S+)\))?/gm,
    ),
  ].map((m) => ({
    name: m[1] as string,
    pid: Number(m[2]),
    url: m[3] as string,
    ...(m[4] ? { internalUrl: m[4] } : {}),
  }))
  const masked = /^\s+postgres postgres:\/\/warren:…@(\S+)$/m.exec(out)?.[1]
  const password = readFileSync(join(dir, 'postgres', 'password'), 'utf8').trim()
  const databaseUrl = `postgres://warren:${encodeURIComponent(password)}@${masked}`
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
    return { code: await exited, output: out }
  }
  const cluster: RunningDevCluster = {
    dir,
    prefix,
    nodes,
    env,
    databaseUrl,
    sdk: {
      apiUrl: env.E2B_API_URL as string,
      sandboxUrl: env.E2B_SANDBOX_URL as string,
      apiKey: env.E2B_API_KEY as string,
    },
    processes,
    child,
    output: () => out,
    async reapNode(n: number) {
      const ports = await Promise.all(Array.from({ length: 5 }, () => freePort()))
      const node = createNode(
        loadOrchestratorConfig({
          dataDir: join(dir, `node-${n}`),
          prefix: `${prefix}${n}`,
          addressPool: splitPool(pool, nodes)[n - 1] as string,
          templatesDir: TEMPLATES_DIR,
          rpcPort: ports[0] as number,
          nodeProxyPort: ports[1] as number,
          dnsPort: ports[2] as number,
          egressHttpPort: ports[3] as number,
          egressTlsPort: ports[4] as number,
        }),
        { log: createLogger('reap', 'warn') },
      )
      await node.start()
      for (const s of await node.list()) await node.kill(s.sandboxId)
      await node.stop()
    },
    stop,
    async teardown() {
      await stop()
      for (const p of processes) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL')
      await teardownHost()
    },
  }
  return cluster
}
