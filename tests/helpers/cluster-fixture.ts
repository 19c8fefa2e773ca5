// A cluster on this machine, every component its own process: `warren api`,
// `warren proxy` and N `warren orchestrator` nodes (each with its own prefix,
// address pool, ports and data directory), set up with `warren cluster init`
// (one secret, a cluster CA, TLS on every internal port). The nodes register
// themselves with their heartbeats.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { checkServerIdentity } from 'node:tls'
import type { Client } from '@connectrpc/connect'
import { clusterTransport, createWarrenClient } from '@warren/shared'
import { NodeService } from '@warren/shared/gen/warren/api/v1/nodes_pb'
import { ProxyService } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { OrchestratorService } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { eventually } from './api-client.js'
import { CLI } from './cli.js'
import { freePort } from './node-fixture.js'
import { type PrivatePostgres, startPostgres } from './postgres.js'
import { teardownWarrenHost, type WarrenSetup, warrenSetup } from './warren-fixture.js'

export interface ClusterNode {
  nodeId: string
  setup: WarrenSetup
  rpcUrl: string
  proxyUrl: string
  rpc: Client<typeof OrchestratorService>
  pid(): number | undefined
  /** SIGKILL: the node dies without a word; its sandboxes stay on the host. */
  kill(): Promise<void>
}

export interface ClusterFixture {
  apiUrl: string
  apiKey: string
  internalUrl: string
  proxyUrl: string
  sdk: { apiUrl: string; sandboxUrl: string; apiKey: string }
  secret: string
  ca: string
  nodes: ClusterNode[]
  nodeService: Client<typeof NodeService>
  proxyService: Client<typeof ProxyService>
  logDir: string
  /** The node a sandbox runs on, asked of the nodes themselves. */
  nodeOf(sandboxId: string): Promise<string | undefined>
  teardown(keepLogs: boolean): Promise<void>
}

export interface ClusterOptions {
  nodes: number
  /** Extra WARREN_* for the API. */
  apiEnv?: Record<string, string>
  /** Extra WARREN_* for node `i`. */
  nodeEnv?: (i: number) => Record<string, string>
  /** The API's store is a private PostgreSQL (else SQLite in its data directory). */
  postgres?: boolean
}

export const exited = (p: ChildProcess) =>
  p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((r) => p.once('exit', () => r()))

/**
 * Warren processes of one fixture (`warren <args>`, each logging to
 * `<logDir>/<name>.log`, appended when a name starts again) and the hosts
 * of its nodes: stopped together, then the hosts made clean and `dir`
 * removed.
 */
export function processGroup(dir: string, logDir: string) {
  const procs: ChildProcess[] = []
  const setups: WarrenSetup[] = []
  let postgres: PrivatePostgres | undefined
  const stopAll = async () => {
    for (const p of procs) {
      if (p.exitCode !== null || p.signalCode !== null) continue
      p.kill('SIGCONT') // a test may have stopped it
      p.kill('SIGTERM')
    }
    await Promise.all(procs.map(exited))
    await postgres?.stop()
    postgres = undefined
  }
  const teardownHosts = async (more: Array<() => Promise<void>> = []) => {
    const errors: unknown[] = []
    for (const s of setups) await teardownWarrenHost(s).catch((e: unknown) => errors.push(e))
    for (const step of more) await step().catch((e: unknown) => errors.push(e))
    rmSync(dir, { recursive: true, force: true })
    if (errors.length) throw errors[0]
  }
  return {
    procs,
    /** Node hosts to make clean at teardown. */
    setups,
    /** A private PostgreSQL, stopped with the processes. */
    async postgres(): Promise<PrivatePostgres> {
      postgres ??= await startPostgres()
      return postgres
    },
    spawn(name: string, args: string[], env: Record<string, string>): ChildProcess {
      const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' })
      const p = spawn(process.execPath, [CLI, ...args], {
        env: { ...process.env, WARREN_LOG_LEVEL: 'info', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      p.stdout?.pipe(log)
      p.stderr?.pipe(log)
      procs.push(p)
      return p
    },
    stopAll,
    teardownHosts,
    /** Stops everything, makes the hosts clean; the logs stay when asked to. */
    async teardown(keepLogs: boolean, more: Array<() => Promise<void>> = []) {
      await stopAll()
      await teardownHosts(more)
      if (!keepLogs) rmSync(logDir, { recursive: true, force: true })
    },
  }
}

export async function startCluster(opts: ClusterOptions): Promise<ClusterFixture> {
  const dir = mkdtempSync('/tmp/warren-cluster-')
  const logDir = mkdtempSync('/tmp/warren-cluster-logs-')
  const group = processGroup(dir, logDir)
  const { procs, setups, stopAll, teardownHosts } = group
  const spawnLogged = group.spawn
  try {
    const clusterDir = join(dir, 'cluster')
    execFileSync(process.execPath, [CLI, 'cluster', 'init', '--dir', clusterDir], {
      stdio: 'ignore',
    })
    const cluster = {
      WARREN_CLUSTER_SECRET_FILE: join(clusterDir, 'secret'),
      WARREN_CLUSTER_CA: join(clusterDir, 'ca', 'cert.pem'),
      WARREN_INTERNAL_TLS_CERT: join(clusterDir, 'internal', 'cert.pem'),
      WARREN_INTERNAL_TLS_KEY: join(clusterDir, 'internal', 'key.pem'),
    }
    const secret = readFileSync(cluster.WARREN_CLUSTER_SECRET_FILE, 'utf8').trim()
    const ca = readFileSync(cluster.WARREN_CLUSTER_CA, 'utf8')
    const ports = { api: await freePort(), internal: await freePort(), proxy: await freePort() }
    const internalUrl = `https://127.0.0.1:${ports.internal}`
    const apiDir = join(dir, 'api')
    const postgres = opts.postgres ? await group.postgres() : undefined
    const api = spawnLogged('api', ['api'], {
      ...(postgres ? { WARREN_DATABASE_URL: postgres.url } : {}),
      ...cluster,
      WARREN_DATA_DIR: apiDir,
      WARREN_LISTEN_HOST: '127.0.0.1',
      WARREN_API_PORT: String(ports.api),
      WARREN_API_INTERNAL_PORT: String(ports.internal),
      WARREN_NODE_POLL_INTERVAL_MS: '500',
      WARREN_NODE_UNHEALTHY_AFTER: '2',
      WARREN_NODE_LOST_AFTER: '6',
      ...opts.apiEnv,
    })
    await waitForOutput(api, /E2B_API_URL=/, 'warren api')
    const apiKey = readFileSync(join(apiDir, 'first-api-key'), 'utf8').trim()
    const proxy = spawnLogged('proxy', ['proxy'], {
      ...cluster,
      WARREN_DATA_DIR: apiDir,
      WARREN_LISTEN_HOST: '127.0.0.1',
      WARREN_PROXY_PORT: String(ports.proxy),
      WARREN_API_INTERNAL_URL: internalUrl,
    })
    // Its workers take a while to start: the tests begin once it listens.
    const proxyListening = waitForOutput(proxy, /proxy listening/, 'warren proxy')
    proxyListening.catch(() => {}) // awaited below

    const transport = (url: string) => clusterTransport(url, { secret, ca })
    const nodes: ClusterNode[] = []
    for (let i = 0; i < opts.nodes; i++) {
      const setup = await warrenSetup(`cluster-node${i}`, {
        ...cluster,
        WARREN_LISTEN_HOST: '127.0.0.1',
        WARREN_API_INTERNAL_URL: internalUrl,
        WARREN_HEARTBEAT_INTERVAL_MS: '500',
        WARREN_EXIT_WATCH_INTERVAL_MS: '500',
        WARREN_WARM_NETWORK_SLOTS: '0',
        ...opts.nodeEnv?.(i),
      })
      setups.push(setup)
      const proc = spawnLogged(`node${i}`, ['orchestrator'], setup.env)
      const rpcUrl = `https://127.0.0.1:${setup.ports.rpc}`
      nodes.push({
        nodeId: setup.env.WARREN_NODE_ID!,
        setup,
        rpcUrl,
        proxyUrl: `https://127.0.0.1:${setup.ports.nodeProxy}`,
        rpc: createWarrenClient(OrchestratorService, transport(rpcUrl)),
        pid: () => (proc.exitCode === null && proc.signalCode === null ? proc.pid : undefined),
        async kill() {
          proc.kill('SIGKILL')
          await exited(proc)
        },
      })
    }
    const nodeService = createWarrenClient(NodeService, transport(internalUrl))
    await eventually(
      'every node registered and healthy',
      async () => {
        const listed = await nodeService.listNodes({}).catch(() => ({ nodes: [] }))
        return (
          listed.nodes.filter((n) => n.health === 'healthy').length === opts.nodes &&
          procs.every((p) => p.exitCode === null)
        )
      },
      120_000,
      250,
    )
    await proxyListening
    const apiUrl = `http://127.0.0.1:${ports.api}`
    const proxyUrl = `http://127.0.0.1:${ports.proxy}`
    return {
      apiUrl,
      apiKey,
      internalUrl,
      proxyUrl,
      sdk: { apiUrl, sandboxUrl: proxyUrl, apiKey },
      secret,
      ca,
      nodes,
      nodeService,
      proxyService: createWarrenClient(ProxyService, transport(internalUrl)),
      logDir,
      async nodeOf(sandboxId) {
        for (const n of nodes) {
          if (n.pid() === undefined) continue
          const listed = await n.rpc.list({}).catch(() => ({ sandboxes: [] }))
          if (listed.sandboxes.some((s) => s.sandboxId === sandboxId)) return n.nodeId
        }
        return undefined
      },
      teardown: (keepLogs) => group.teardown(keepLogs),
    }
  } catch (err) {
    await stopAll()
    await teardownHosts().catch(() => {})
    console.error(`cluster did not start; logs in ${logDir}`)
    throw err
  }
}

export function waitForOutput(p: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${out}`)), 60_000)
    const onData = (b: Buffer) => {
      out += b.toString()
      if (pattern.test(out)) {
        clearTimeout(timer)
        resolve()
      }
    }
    p.stdout?.on('data', onData)
    p.stderr?.on('data', onData)
    p.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${code}): ${out}`))
    })
  })
}

/** One cluster per test file. */
export function useCluster(opts: ClusterOptions): () => ClusterFixture {
  let fixture: ClusterFixture | undefined
  let failed = false
  beforeAll(async () => {
    fixture = await startCluster(opts)
  }, 240_000)
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') failed = true
  })
  afterAll(async () => {
    if (failed && fixture) console.error(`cluster logs kept in ${fixture.logDir}`)
    await fixture?.teardown(failed)
  }, 240_000)
  return () => {
    if (!fixture) throw new Error('cluster fixture not started')
    return fixture
  }
}

/** An HTTPS request to an internal port, its certificate checked against the cluster CA. */
export function internalRequest(
  url: string,
  ca: string,
  opts: {
    method?: string
    headers?: Record<string, string>
    body?: string
    /** A connection of its own, not one of the kept-alive ones. */
    newConnection?: boolean
  } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: opts.method ?? 'GET',
        headers: opts.headers ?? {},
        ...(opts.newConnection ? { agent: false } : {}),
        ca,
        // Checked for the host dialled, whatever Host header the request names.
        checkServerIdentity: (_host, cert) => checkServerIdentity(new URL(url).hostname, cert),
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      },
    )
    req.once('error', reject)
    req.end(opts.body)
  })
}
