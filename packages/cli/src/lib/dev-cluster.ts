import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, createWriteStream, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CleanupStack, freePort, type Logger, WarrenError } from '@warren/shared'
import { initCluster } from './cluster-files.js'
import { readFirstKey } from './first-key.js'
import { splitPool } from './pool-split.js'
import { type PrivatePostgres, startPrivatePostgres } from './private-postgres.js'

/** `warren` itself: every component runs as `node <main.js> <command>`. */
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url))

export interface DevClusterOptions {
  /** Everything of the cluster: PostgreSQL's data, each process's data dir and log. */
  dir: string
  apis: number
  nodes: number
  /** Split between the nodes, a part each. */
  addressPool: string
  /** Node n's resources are named `<prefix><n>`. */
  prefix: string
  /** Built templates, shared by the nodes (the machine's, by default). */
  templatesDir: string
  log: Logger
}

export interface Component {
  name: string
  kind: 'api' | 'orchestrator' | 'proxy'
  pid: number
  url: string
  child: ChildProcess
  /** The fields of the line it logged when it started listening. */
  ready: Record<string, unknown>
}

export interface DevCluster {
  apiUrls: string[]
  proxyUrl: string
  databaseUrl: string
  key: string | undefined
  caCertPath: string | undefined
  caBundlePath: string | undefined
  components: Component[]
  /** Kills every sandbox, then stops the processes and PostgreSQL; what failed. */
  stop(): Promise<Error[]>
}

const READY: Record<Component['kind'], RegExp> = {
  api: /"msg":"api listening"/,
  orchestrator: /"msg":"orchestrator listening"/,
  proxy: /"msg":"proxy listening"/,
}

/** Starts `warren <kind>` with `env`; resolves once it logs that it listens. */
async function startComponent(
  dir: string,
  name: string,
  kind: Component['kind'],
  env: Record<string, string>,
): Promise<Component> {
  const logPath = join(dir, 'logs', `${name}.log`)
  const log = createWriteStream(logPath, { flags: 'a', mode: 0o600 })
  const child = spawn(process.execPath, [MAIN, kind], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.pipe(log)
  child.stderr?.pipe(log)
  let seen = ''
  let ready: Record<string, unknown> = {}
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('did not start within 120 s')), 120_000)
    const onData = (b: Buffer) => {
      seen = (seen + b.toString()).slice(-64 * 1024)
      // Whole lines only: the last one may still be arriving.
      const line = seen
        .split('\n')
        .slice(0, -1)
        .find((l) => READY[kind].test(l))
      if (line) {
        ready = JSON.parse(line) as Record<string, unknown>
        done()
      }
    }
    const onExit = (code: number | null) => fail(new Error(`exited (${code})`))
    const cleanup = () => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
    }
    const done = () => {
      cleanup()
      resolve()
    }
    const fail = (err: Error) => {
      cleanup()
      child.kill('SIGKILL')
      const tail = seen.split('\n').slice(-15).join('\n')
      reject(new WarrenError('internal', `${name} ${err.message}; its log (${logPath}):\n${tail}`))
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', onExit)
  })
  return { name, kind, pid: child.pid ?? -1, url: String(ready.url), child, ready }
}

async function stopComponent(c: Component): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return
  const exited = new Promise((resolve) => c.child.once('exit', resolve))
  c.child.kill('SIGTERM')
  const timer = setTimeout(() => c.child.kill('SIGKILL'), 20_000)
  await exited
  clearTimeout(timer)
}

/** Kills the sandboxes the first key's team has; how many it found, or undefined if no replica answered. */
async function killListed(apiUrls: string[], key: string): Promise<number | undefined> {
  const headers = { 'X-API-Key': key }
  for (const api of apiUrls) {
    try {
      let found = 0
      for (let next: string | null = ''; next !== null; ) {
        const page = next ? `&nextToken=${encodeURIComponent(next)}` : ''
        const res = await fetch(`${api}/v2/sandboxes?state=running,paused&limit=1000${page}`, {
          headers,
        })
        if (!res.ok) throw new Error(`list: ${res.status}`)
        const list = (await res.json()) as Array<{ sandboxID: string }>
        found += list.length
        await Promise.all(
          list.map((s) => fetch(`${api}/sandboxes/${s.sandboxID}`, { method: 'DELETE', headers })),
        )
        next = res.headers.get('x-next-token')
      }
      return found
    } catch {
      // This replica is gone or failing: the next one answers.
    }
  }
  return undefined
}

/**
 * Kills every sandbox, in passes until one finds none: a create still in
 * flight at the first pass is listed (running) by a later one. Bounded.
 */
async function killAllSandboxes(apiUrls: string[], key: string | undefined): Promise<void> {
  if (!key) return
  for (let pass = 0; pass < 30; pass++) {
    const found = await killListed(apiUrls, key)
    if (found === 0 || found === undefined) return
    await new Promise((r) => setTimeout(r, 1000))
  }
}

/**
 * A whole cluster on this machine as separate processes: a private
 * PostgreSQL, API replicas on it, orchestrator nodes with their own prefixes,
 * address pools, ports and data dirs, and an edge proxy. What fails halfway
 * is stopped again.
 */
export async function startDevCluster(o: DevClusterOptions): Promise<DevCluster> {
  // Traversable (not listable) by PostgreSQL's user, which owns its own subdirectory.
  mkdirSync(o.dir, { recursive: true })
  chmodSync(o.dir, 0o711)
  mkdirSync(join(o.dir, 'logs'), { recursive: true, mode: 0o700 })
  const cleanup = new CleanupStack()
  const components: Component[] = []
  try {
    const pg: PrivatePostgres = await startPrivatePostgres({
      dir: join(o.dir, 'postgres'),
      port: await freePort(),
      database: 'warren',
    })
    cleanup.push('postgres', () => pg.stop())
    o.log.info({ url: pg.url.replace(/:[^:@]*@/, ':…@') }, 'postgres started')

    // One secret, CA and internal certificate for every process: every
    // internal port authenticates its callers and speaks TLS.
    const clusterEnv = await initCluster(join(o.dir, 'cluster'), ['localhost', '127.0.0.1'], {
      reuse: true,
    })
    const proxyPort = await freePort()
    const domain = `localhost:${proxyPort}`
    const pools = splitPool(o.addressPool, o.nodes)
    const nodes: Array<{ id: string; rpcUrl: string }> = []
    for (let n = 1; n <= o.nodes; n++) {
      const [rpc, nodeProxy, dns, egressHttp, egressTls] = await Promise.all(
        Array.from({ length: 5 }, () => freePort()),
      )
      const id = `node-${n}`
      const c = await startComponent(o.dir, id, 'orchestrator', {
        ...clusterEnv,
        WARREN_NODE_ID: id,
        WARREN_NODE_PREFIX: `${o.prefix}${n}`,
        WARREN_DATA_DIR: join(o.dir, id),
        WARREN_TEMPLATES_DIR: o.templatesDir,
        WARREN_ADDRESS_POOL: pools[n - 1] as string,
        WARREN_LISTEN_HOST: '127.0.0.1',
        WARREN_ORCHESTRATOR_PORT: String(rpc),
        WARREN_NODE_PROXY_PORT: String(nodeProxy),
        WARREN_DNS_PORT: String(dns),
        WARREN_EGRESS_HTTP_PORT: String(egressHttp),
        WARREN_EGRESS_TLS_PORT: String(egressTls),
      })
      components.push(c)
      cleanup.push(c.name, () => stopComponent(c))
      nodes.push({ id, rpcUrl: c.url })
    }

    const apiUrls: string[] = []
    const internalUrls: string[] = []
    let key: string | undefined
    for (let n = 1; n <= o.apis; n++) {
      const [port, internal] = [await freePort(), await freePort()]
      const dataDir = join(o.dir, `api-${n}`)
      // The first replica makes the default team and its first key (kept in its data dir).
      const c = await startComponent(o.dir, `api-${n}`, 'api', {
        ...clusterEnv,
        WARREN_DATA_DIR: dataDir,
        WARREN_DATABASE_URL: pg.url,
        WARREN_LISTEN_HOST: '127.0.0.1',
        WARREN_API_PORT: String(port),
        WARREN_API_INTERNAL_PORT: String(internal),
        WARREN_DOMAIN: domain,
        WARREN_NODES: nodes.map((x) => `${x.id}=${x.rpcUrl}`).join(','),
      })
      components.push(c)
      cleanup.push(c.name, () => stopComponent(c))
      apiUrls.push(c.url)
      internalUrls.push(c.ready.internalUrl as string)
      key ??= readFirstKey(dataDir)
    }

    const proxyDir = join(o.dir, 'proxy')
    const proxy = await startComponent(o.dir, 'proxy', 'proxy', {
      ...clusterEnv,
      WARREN_DATA_DIR: proxyDir,
      WARREN_PROXY_PORT: String(proxyPort),
      WARREN_DOMAIN: domain,
      WARREN_API_INTERNAL_URL: internalUrls[0] as string,
    })
    components.push(proxy)
    cleanup.push('proxy', () => stopComponent(proxy))

    return {
      apiUrls,
      proxyUrl: proxy.url,
      databaseUrl: pg.url,
      key,
      caCertPath: proxy.ready.caCertPath as string | undefined,
      caBundlePath: proxy.ready.caBundlePath as string | undefined,
      components,
      async stop() {
        await killAllSandboxes(apiUrls, key)
        return cleanup.run()
      },
    }
  } catch (err) {
    await cleanup.run().catch(() => {})
    throw err
  }
}
