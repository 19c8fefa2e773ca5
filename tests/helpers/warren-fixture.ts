// A real `warren up` (the all-in-one process) for end-to-end tests: its own
// ports, node prefix, address pool and data directory, the shared base
// template; teardown kills every sandbox it left and proves the host clean.
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createNode } from '@warren/orchestrator'
import { createLogger, loadOrchestratorConfig } from '@warren/shared'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { CLI } from './cli.js'
import {
  destroyNode,
  freePort,
  servicePorts,
  TEMPLATES_DIR,
  uniquePool,
  uniquePrefix,
} from './node-fixture.js'
import { type PrivatePostgres, startPostgres } from './postgres.js'

export interface WarrenFixture {
  apiUrl: string
  proxyUrl: string
  apiKey: string
  /** Connection options for the e2b SDK. */
  sdk: { apiUrl: string; sandboxUrl: string; apiKey: string }
  prefix: string
  dataDir: string
  /** The API's store: SQLite in the data dir, or a private PostgreSQL (WARREN_TEST_DATABASE=postgres). */
  databaseUrl: string
  env: Record<string, string>
  ports: { api: number; internal: number; proxy: number; rpc: number; nodeProxy: number }
  logPath: string
  /** What `warren up` printed (its banner) since it last started. */
  readonly stdout: string
  /** Stops the process (SIGTERM, or SIGKILL when `hard`); sandboxes stay. */
  stop(hard?: boolean): Promise<void>
  /** Starts the process again with the same configuration. */
  start(): Promise<void>
  /** Kills what is left and cleans the host; the log stays only when `keepLog`. */
  teardown(keepLog?: boolean): Promise<void>
  /** The running process's pid (undefined while stopped). */
  pid(): number | undefined
}

export interface WarrenOptions {
  /** Extra WARREN_* variables. */
  env?: Record<string, string>
  /**
   * Runs before the first start (e.g. a filesystem of its own under the data
   * directory); what it returns runs after the teardown.
   */
  prepare?: (setup: WarrenSetup) => Promise<() => Promise<void>>
}

/** What every Warren process of one test shares: prefix, data dir, address pool, ports. */
export interface WarrenSetup {
  prefix: string
  dataDir: string
  pool: string
  ports: { api: number; internal: number; proxy: number; rpc: number; nodeProxy: number }
  /** The WARREN_* variables that give the processes this setup. */
  env: Record<string, string>
}

/** A fresh setup on free ports, its own prefix and pool; `tag` names the data directory. */
export async function warrenSetup(tag: string, extraEnv: Record<string, string> = {}) {
  const prefix = uniquePrefix()
  const dataDir = mkdtempSync(`/tmp/warren-${tag}-${prefix}-`)
  const pool = uniquePool()
  const ports = {
    api: await freePort(),
    internal: await freePort(),
    proxy: await freePort(),
    rpc: await freePort(),
    nodeProxy: await freePort(),
  }
  const services = await servicePorts()
  const env: Record<string, string> = {
    WARREN_DATA_DIR: dataDir,
    WARREN_TEMPLATES_DIR: TEMPLATES_DIR,
    WARREN_NODE_PREFIX: prefix,
    WARREN_NODE_ID: `test-${prefix}`,
    WARREN_ADDRESS_POOL: pool,
    WARREN_API_PORT: String(ports.api),
    WARREN_API_INTERNAL_PORT: String(ports.internal),
    WARREN_PROXY_PORT: String(ports.proxy),
    WARREN_ORCHESTRATOR_PORT: String(ports.rpc),
    WARREN_NODE_PROXY_PORT: String(ports.nodeProxy),
    // The node's DNS and egress proxy; DNS forwards nowhere real unless a test says so.
    WARREN_DNS_PORT: String(services.dnsPort),
    WARREN_EGRESS_HTTP_PORT: String(services.egressHttpPort),
    WARREN_EGRESS_TLS_PORT: String(services.egressTlsPort),
    WARREN_DNS_UPSTREAMS: services.dnsUpstreams,
    ...extraEnv,
  }
  return { prefix, dataDir, pool, ports, env } satisfies WarrenSetup
}

/**
 * Sandboxes outlive Warren's processes by design: once those are gone, a node
 * of the same configuration adopts and kills them, then the host must be clean.
 */
export async function teardownWarrenHost(setup: WarrenSetup): Promise<void> {
  const { prefix, dataDir, pool } = setup
  const cfg = loadOrchestratorConfig(
    {
      dataDir,
      prefix,
      addressPool: pool,
      templatesDir: TEMPLATES_DIR,
      warmNetworkSlots: 0,
      ...(await servicePorts()),
    },
    {},
  )
  const node = createNode(cfg, { log: createLogger(`teardown-${prefix}`, 'warn') })
  await node.start()
  await destroyNode(node, prefix, dataDir)
}

/**
 * With WARREN_TEST_DATABASE=postgres each fixture runs Warren on a private
 * PostgreSQL of its own (tests/helpers/postgres.ts), stopped at teardown.
 */
async function fixtureDatabase(): Promise<PrivatePostgres | undefined> {
  return process.env.WARREN_TEST_DATABASE === 'postgres' ? startPostgres() : undefined
}

export async function startWarren(opts: WarrenOptions = {}): Promise<WarrenFixture> {
  const postgres = await fixtureDatabase()
  let setup: WarrenSetup
  try {
    setup = await warrenSetup('up', {
      WARREN_WARM_NETWORK_SLOTS: '2',
      ...(postgres ? { WARREN_DATABASE_URL: postgres.url } : {}),
      ...opts.env,
    })
  } catch (err) {
    await postgres?.stop()
    throw err
  }
  const { prefix, dataDir, ports, env } = setup
  const databaseUrl = postgres?.url ?? `sqlite:${dataDir}/warren.db`
  // Outside the data directory, which teardown removes: kept when a test failed.
  const logPath = `/tmp/warren-up-${prefix}.log`
  let child: ChildProcess | undefined
  let key = ''
  let out = ''

  const start = async () => {
    const log = createWriteStream(logPath, { flags: 'a' })
    const proc = spawn(process.execPath, [CLI, 'up'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = proc
    proc.stderr?.pipe(log)
    out = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`warren up did not start; see ${logPath}`)),
        120_000,
      )
      proc.stdout?.on('data', (b: Buffer) => {
        log.write(b)
        out += b.toString()
        const m = /E2B_API_KEY=(e2b_[0-9a-f]{40})/.exec(out)
        if (m) {
          key = m[1]!
          clearTimeout(timer)
          resolve()
        }
      })
      proc.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`warren up exited (${code}); see ${logPath}:\n${tail(logPath)}`))
      })
    })
  }

  const stop = async (hard = false) => {
    const proc = child
    child = undefined
    if (!proc || proc.exitCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill(hard ? 'SIGKILL' : 'SIGTERM')
    await exited
  }

  const unprepare = opts.prepare ? await opts.prepare(setup) : async () => {}
  const teardownNode = async () => {
    try {
      await teardownWarrenHost(setup)
    } finally {
      await unprepare()
      await postgres?.stop()
    }
  }

  const apiUrl = `http://127.0.0.1:${ports.api}`
  try {
    await start()
    await requireTestIsolation(apiUrl, key)
  } catch (err) {
    // A failed start leaves nothing behind either.
    await stop(true)
    await teardownNode()
    throw err
  }
  const proxyUrl = `http://127.0.0.1:${ports.proxy}`
  return {
    apiUrl,
    proxyUrl,
    get apiKey() {
      return key
    },
    get sdk() {
      return { apiUrl, sandboxUrl: proxyUrl, apiKey: key }
    },
    prefix,
    dataDir,
    databaseUrl,
    env,
    ports,
    logPath,
    get stdout() {
      return out
    },
    stop,
    start,
    pid: () => child?.pid,
    async teardown(keepLog = false) {
      await stop()
      await teardownNode()
      if (!keepLog) rmSync(logPath, { force: true })
    },
  }
}

/**
 * WARREN_TEST_ISOLATION=gvisor runs a suite's sandboxes under gVisor: the
 * default team (the first key's) is given a policy requiring it, so every
 * create — the SDK's included, unchanged — gets it.
 */
async function requireTestIsolation(apiUrl: string, adminKey: string): Promise<void> {
  const isolation = process.env.WARREN_TEST_ISOLATION
  if (!isolation || isolation === 'runc') return
  const res = await fetch(`${apiUrl}/admin/teams/default`, {
    method: 'PATCH',
    headers: { 'x-api-key': adminKey, 'content-type': 'application/json' },
    body: JSON.stringify({ requiredIsolation: isolation }),
  })
  if (res.status !== 200)
    throw new Error(`WARREN_TEST_ISOLATION=${isolation}: ${res.status} ${await res.text()}`)
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-30).join('\n')
  } catch {
    return ''
  }
}

/** One `warren up` per test file. */
export function useWarren(opts: WarrenOptions = {}): () => WarrenFixture {
  let fixture: WarrenFixture | undefined
  let failed = false
  beforeAll(async () => {
    fixture = await startWarren(opts)
  }, 180_000)
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail' && fixture) {
      failed = true
      console.error(
        `[${fixture.prefix}] test '${ctx.task.name}' failed; warren log: ${fixture.logPath}`,
      )
    }
  })
  afterAll(async () => {
    await fixture?.teardown(failed)
  }, 180_000)
  return () => {
    if (!fixture) throw new Error('warren fixture not started')
    return fixture
  }
}
