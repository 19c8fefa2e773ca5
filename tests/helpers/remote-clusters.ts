// One control plane and remote data planes on this machine, every component
// a process of its own: `warren api` on a private PostgreSQL with TLS on its
// internal port (`warren cluster init`), and per remote cluster (`warren
// cluster add <name>`: its own secret, a certificate from the control
// plane's CA) one `warren orchestrator` node and one `warren proxy` edge
// that know only that cluster's secret. The API can be stopped and started
// again (the control plane going away under running data planes).
import { type ChildProcess, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Client } from '@connectrpc/connect'
import { clusterTransport, createWarrenClient } from '@warren/shared'
import { NodeService } from '@warren/shared/gen/warren/api/v1/nodes_pb'
import { ProxyService } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { eventually } from './api-client.js'
import { CLI } from './cli.js'
import { exited, processGroup, waitForOutput } from './cluster-fixture.js'
import { freePort } from './node-fixture.js'
import { type PrivatePostgres, startPostgres } from './postgres.js'
import { type WarrenSetup, warrenSetup } from './warren-fixture.js'

export interface RemoteCluster {
  name: string
  secret: string
  /** Its edge proxy (plain HTTP on loopback). */
  edgeUrl: string
  /** SDK options whose sandbox URL is this cluster's edge. */
  sdk: { apiUrl: string; sandboxUrl: string; apiKey: string }
  nodeId: string
  setup: WarrenSetup
  /** The API's internal RPC as this cluster's components call it (its secret). */
  proxyService: Client<typeof ProxyService>
  nodeService: Client<typeof NodeService>
}

export interface ControlPlane {
  apiUrl: string
  apiKey: string
  internalUrl: string
  /** The control plane's own cluster secret and CA. */
  secret: string
  ca: string
  clusters: Record<string, RemoteCluster>
  logDir: string
  /** The API's internal RPC with some secret (its own by default). */
  proxyServiceWith(secret: string): Client<typeof ProxyService>
  nodeServiceWith(secret: string): Client<typeof NodeService>
  /** SIGTERMs the API (the data planes keep running). */
  stopApi(): Promise<void>
  /** Starts the API again on the same store and ports. */
  startApi(): Promise<void>
  teardown(keepLogs: boolean): Promise<void>
}

/** Starts a control plane and one remote cluster (a node and an edge) per name. */
export async function startControlPlane(names: string[]): Promise<ControlPlane> {
  const dir = mkdtempSync('/tmp/warren-remote-')
  const logDir = mkdtempSync('/tmp/warren-remote-logs-')
  const group = processGroup(dir, logDir)
  const { procs, setups } = group
  const spawnLogged = group.spawn
  let postgres: PrivatePostgres | undefined
  let api: ChildProcess | undefined
  const stopDatabase = async () => {
    await postgres?.stop()
  }
  try {
    postgres = await startPostgres()
    const cpDir = join(dir, 'control-plane')
    execFileSync(process.execPath, [CLI, 'cluster', 'init', '--dir', cpDir], { stdio: 'ignore' })
    const files = (d: string) => ({
      WARREN_CLUSTER_SECRET_FILE: join(d, 'secret'),
      WARREN_CLUSTER_CA: join(d, 'ca', 'cert.pem'),
      WARREN_INTERNAL_TLS_CERT: join(d, 'internal', 'cert.pem'),
      WARREN_INTERNAL_TLS_KEY: join(d, 'internal', 'key.pem'),
    })
    const secret = readFileSync(join(cpDir, 'secret'), 'utf8').trim()
    const ca = readFileSync(join(cpDir, 'ca', 'cert.pem'), 'utf8')
    const ports = { api: await freePort(), internal: await freePort() }
    const internalUrl = `https://127.0.0.1:${ports.internal}`
    const apiDir = join(dir, 'api')
    const apiEnv = {
      ...files(cpDir),
      WARREN_DATABASE_URL: postgres.url,
      WARREN_DATA_DIR: apiDir,
      WARREN_LISTEN_HOST: '127.0.0.1',
      WARREN_API_PORT: String(ports.api),
      WARREN_API_INTERNAL_PORT: String(ports.internal),
      WARREN_NODE_UNHEALTHY_AFTER: '3',
      WARREN_NODE_LOST_AFTER: '60',
    }
    const startApi = async () => {
      api = spawnLogged('api', ['api'], apiEnv)
      await waitForOutput(api, /E2B_API_URL=/, 'warren api')
    }
    await startApi()
    const apiKey = readFileSync(join(apiDir, 'first-api-key'), 'utf8').trim()
    const apiUrl = `http://127.0.0.1:${ports.api}`
    const transport = (s: string) => clusterTransport(internalUrl, { secret: s, ca })

    const clusters: Record<string, RemoteCluster> = {}
    for (const name of names) {
      const clusterFiles = join(dir, name)
      // What the operator runs on the control plane's host: the cluster's files to copy over.
      execFileSync(
        process.execPath,
        [CLI, 'cluster', 'add', name, '--dir', clusterFiles, '--from', cpDir],
        { env: { ...process.env, ...apiEnv }, stdio: 'ignore' },
      )
      const own = { ...files(clusterFiles), WARREN_CLUSTER_NAME: name }
      const setup = await warrenSetup(`remote-${name}`, {
        ...own,
        WARREN_LISTEN_HOST: '127.0.0.1',
        WARREN_API_INTERNAL_URL: internalUrl,
        WARREN_HEARTBEAT_INTERVAL_MS: '500',
        WARREN_EXIT_WATCH_INTERVAL_MS: '500',
        WARREN_WARM_NETWORK_SLOTS: '0',
      })
      setups.push(setup)
      spawnLogged(`node-${name}`, ['orchestrator'], setup.env)
      spawnLogged(`edge-${name}`, ['proxy'], {
        ...own,
        WARREN_DATA_DIR: join(dir, `edge-${name}`),
        WARREN_LISTEN_HOST: '127.0.0.1',
        WARREN_PROXY_PORT: String(setup.ports.proxy),
        WARREN_API_INTERNAL_URL: internalUrl,
      })
      const clusterSecret = readFileSync(join(clusterFiles, 'secret'), 'utf8').trim()
      const edgeUrl = `http://127.0.0.1:${setup.ports.proxy}`
      clusters[name] = {
        name,
        secret: clusterSecret,
        edgeUrl,
        sdk: { apiUrl, sandboxUrl: edgeUrl, apiKey },
        nodeId: setup.env.WARREN_NODE_ID!,
        setup,
        proxyService: createWarrenClient(ProxyService, transport(clusterSecret)),
        nodeService: createWarrenClient(NodeService, transport(clusterSecret)),
      }
    }
    for (const c of Object.values(clusters)) {
      await eventually(
        `cluster ${c.name}: its node registered and healthy, its edge answering`,
        async () => {
          const listed = await c.nodeService.listNodes({}).catch(() => ({ nodes: [] }))
          const edge = await fetch(c.edgeUrl).catch(() => undefined)
          return (
            listed.nodes.some((n) => n.nodeId === c.nodeId && n.health === 'healthy') &&
            edge?.status === 400 &&
            procs.every((p) => p.exitCode === null || p === api)
          )
        },
        120_000,
        250,
      )
    }
    return {
      apiUrl,
      apiKey,
      internalUrl,
      secret,
      ca,
      clusters,
      logDir,
      proxyServiceWith: (s) => createWarrenClient(ProxyService, transport(s)),
      nodeServiceWith: (s) => createWarrenClient(NodeService, transport(s)),
      async stopApi() {
        if (!api) return
        api.kill('SIGTERM')
        await exited(api)
      },
      startApi,
      teardown: (keepLogs) => group.teardown(keepLogs, [stopDatabase]),
    }
  } catch (err) {
    await group.stopAll()
    await group.teardownHosts([stopDatabase]).catch(() => {})
    console.error(`control plane did not start; logs in ${logDir}`)
    throw err
  }
}
