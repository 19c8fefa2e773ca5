import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { createRouterTransport, type Transport } from '@connectrpc/connect'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import { createAdaptorServer } from '@hono/node-server'
import {
  type ApiConfig,
  CleanupStack,
  errorInterceptor,
  keepConnectionsLong,
  type Logger,
  listen,
  WarrenError,
} from '@warren/shared'
import { ProxyService } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { Catalog } from './catalog/catalog.js'
import { createApiApp } from './http/app.js'
import { proxyService } from './internal/proxy-service.js'
import type { Clock } from './lifecycle/clock.js'
import { type LifecycleDeps, LifecycleEngine } from './lifecycle/engine.js'
import { startNodeSync } from './lifecycle/node-sync.js'
import { networkTransport, Placement, parseNodeList } from './placement/nodes.js'
import { type Db, isPostgres, openDatabase } from './store/db.js'
import { takeLease } from './store/replicas.js'
import { purgeTombstones } from './store/sandboxes.js'
import { createFirstApiKey, ensureDefaultTeam, type Team } from './store/teams.js'
import { failInterruptedBuilds } from './store/template-builds.js'
import { runBuild } from './templates/build-runner.js'
import { TemplateFiles } from './templates/files.js'

export interface ApiService {
  db: Db
  engine: LifecycleEngine
  placement: Placement
  catalog: Catalog
  team: Team
  /** The first API key, when this start created it (shown once). */
  createdKey: string | undefined
  /** The proxies' RPC without a network hop, for the all-in-one. */
  proxyTransport: Transport
  listen(): Promise<{ url: string; internalUrl: string }>
  stop(): Promise<void>
}

export function databaseUrl(cfg: ApiConfig): string {
  return cfg.database ?? `sqlite:${join(cfg.dataDir, 'warren.db')}`
}

/**
 * Periodic work that one replica at a time does: `fn` runs only while this
 * replica holds the named lease in the store (taken for twice the period, so
 * a dead holder's lease runs out and another replica goes on). With SQLite
 * there is one process and no lease to take.
 */
function leased(
  db: Db,
  engine: LifecycleEngine,
  name: string,
  periodMs: number,
  fn: () => Promise<void>,
): () => Promise<void> {
  if (!isPostgres(db)) return fn
  return async () => {
    if (await takeLease(db, name, engine.replicaId, engine.clock.now(), periodMs * 2)) await fn()
  }
}

/**
 * Builds the control plane: store (migrated), default team and first key,
 * placement over the given nodes, the catalog and the lifecycle engine.
 * Nothing listens until `listen()`.
 */
export async function createApiService(
  cfg: ApiConfig,
  log: Logger,
  nodes: Transport[] = [],
  opts: { clock?: Clock; replication?: LifecycleDeps['replication'] } = {},
): Promise<ApiService> {
  const db = await openDatabase(databaseUrl(cfg))
  const team = await ensureDefaultTeam(db, cfg)
  // Made once, also when replicas start together.
  const createdKey = await createFirstApiKey(db, team.id)

  const placement = new Placement(log)
  for (const t of nodes) await placement.register(t)
  // Configured nodes are known by id: one that is down now is registered
  // unhealthy, and node sync brings it in when it answers.
  for (const n of parseNodeList(cfg.nodes ?? ''))
    await placement.register(networkTransport(n.url), n.nodeId)
  if (!placement.list().length)
    throw new WarrenError('unavailable', 'no orchestrator node configured')

  const catalog = new Catalog(
    (nodeId) => placement.list().find((n) => n.nodeId === nodeId)?.proxyUrl,
  )
  // A node that was down when the API started (or moved) gets its routes back.
  placement.onNodeChange((n) => catalog.moveNode(n.nodeId, n.proxyUrl))
  const engine = new LifecycleEngine({
    db,
    placement,
    catalog,
    log,
    maxConcurrentExpiries: cfg.maxConcurrentExpiries,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.replication ? { replication: opts.replication } : {}),
  })
  // The system clock, or the store's time with several replicas.
  const clock = engine.clock
  await engine.start()
  const sync = startNodeSync({
    db,
    placement,
    intervalMs: cfg.nodeSyncIntervalS * 1000,
    log,
    lease: (pass) => leased(db, engine, 'node-sync', cfg.nodeSyncIntervalS * 1000, pass),
    actions: {
      lost: (id, version) => engine.markLost(id, version),
      orphan: (nodeId, id) => engine.killOrphan(nodeId, id),
      networkDrift: (id) => engine.repairNetwork(id),
    },
  })
  await sync.runOnce()

  // Builds whose stream an earlier API process held are over (with several
  // replicas, only those of dead replicas: lifecycle/takeover.ts).
  if (!engine.replication) {
    const interrupted = await failInterruptedBuilds(db, clock.now())
    if (interrupted) log.warn({ builds: interrupted }, 'template builds interrupted by a restart')
  }
  const builds = new Set<Promise<void>>()
  const stopping = new AbortController()
  const templates = {
    files: new TemplateFiles(cfg.dataDir),
    selfUrl: { current: undefined as string | undefined },
    log,
    run: (build: Parameters<typeof runBuild>[1], req: Parameters<typeof runBuild>[2]) => {
      const p = runBuild({ db, placement, log, clock }, build, req, stopping.signal).catch((err) =>
        log.error({ err, buildId: build.id }, 'template build runner failed'),
      )
      builds.add(p)
      void p.finally(() => builds.delete(p))
    },
  }

  const domain = cfg.domain ?? 'localhost:3002'
  const app = createApiApp(
    {
      db,
      engine,
      placement,
      view: { domain },
      defaultTimeoutS: cfg.defaultTimeoutS,
      clock,
      templates,
    },
    log,
  )
  const onInternal = (err: unknown) => log.error({ err }, 'internal rpc failed')
  const proxyImpl = proxyService(catalog, engine)
  const proxyTransport = createRouterTransport((r) => r.service(ProxyService, proxyImpl), {
    router: { interceptors: [errorInterceptor(onInternal)] },
  })

  let servers: Server[] = []
  // Tombstones are forgotten in bounded batches, by the store and by the
  // catalog (and so by every proxy following it; other replicas' catalogs
  // hear of the deletes from the store), at most half a TTL (and at most a
  // minute) after they expire; by one replica at a time.
  const purgeMs = Math.min(60_000, Math.max(1000, cfg.tombstoneTtlS * 500))
  const purgeOnce = leased(db, engine, 'tombstone-purge', purgeMs, async () => {
    const ids = await purgeTombstones(db, clock.now() - cfg.tombstoneTtlS * 1000)
    for (const id of ids) catalog.remove(id)
    if (ids.length) log.debug({ n: ids.length }, 'tombstones purged')
  })
  const purge = setInterval(() => {
    void purgeOnce().catch((err) => log.warn({ err }, 'tombstone purge failed'))
  }, purgeMs)
  purge.unref()

  return {
    db,
    engine,
    placement,
    catalog,
    team,
    createdKey,
    proxyTransport,
    async listen() {
      // What is already listening is closed again if a later step fails (the
      // internal port taken, say), so a failed listen() holds no port.
      const cleanup = new CleanupStack()
      try {
        const api = await listenRest()
        cleanup.push('api server', () => close(api.server))
        const internal = await listenInternal()
        cleanup.release()
        servers = [api.server, internal.server]
        templates.selfUrl.current = api.url
        return { url: api.url, internalUrl: internal.url }
      } catch (err) {
        for (const e of await cleanup.run()) log.warn({ err: e }, 'listen: cleanup failed')
        throw err
      }
    },
    async stop() {
      clearInterval(purge)
      sync.stop()
      await Promise.all(servers.map(close))
      // Running builds end as errors (their node stops them when the stream closes).
      stopping.abort()
      await Promise.allSettled([...builds])
      await engine.stop()
      await db.destroy()
    },
  }

  async function listenRest(): Promise<{ server: Server; url: string }> {
    const server = createAdaptorServer({ fetch: app.fetch, hostname: cfg.listenHost }) as Server
    keepConnectionsLong(server)
    return { server, url: await listen(server, cfg.listenHost, cfg.port) }
  }

  async function listenInternal(): Promise<{ server: Server; url: string }> {
    const internal = createServer(
      connectNodeAdapter({
        routes: (r) => r.service(ProxyService, proxyImpl),
        interceptors: [errorInterceptor(onInternal)],
        // Prometheus text next to the internal RPC: operators' network only.
        fallback: (req, res) => {
          if (req.url === '/metrics') {
            void engine.metrics.registry.metrics().then((text) => {
              res.writeHead(200, { 'content-type': engine.metrics.registry.contentType })
              res.end(text)
            })
            return
          }
          res.writeHead(404, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ code: 404, message: 'not found' }))
        },
      }),
    )
    keepConnectionsLong(internal)
    return { server: internal, url: await listen(internal, cfg.listenHost, cfg.internalPort) }
  }
}

function close(s: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    s.close(() => resolve())
    s.closeAllConnections?.()
  })
}
