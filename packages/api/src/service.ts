import type { Server } from 'node:http'
import { join } from 'node:path'
import { createRouterTransport, type Transport } from '@connectrpc/connect'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import { createAdaptorServer } from '@hono/node-server'
import {
  type ApiConfig,
  CleanupStack,
  closeServer,
  clusterTransport,
  createInternalServer,
  errorInterceptor,
  keepConnectionsLong,
  type Listening,
  type Logger,
  listen,
  listenOn,
  readClusterCa,
  readInternalTls,
  requestIdInterceptor,
  resolveClusterSecret,
  rpcLogInterceptor,
  schemeOf,
} from '@warren/shared'
import { NodeService } from '@warren/shared/gen/warren/api/v1/nodes_pb'
import { ProxyService } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { Catalog } from './catalog/catalog.js'
import { EventStreams } from './events/streams.js'
import { EventTail } from './events/tail.js'
import { createApiApp } from './http/app.js'
import { createClusterGate, ownCaller } from './internal/callers.js'
import { nodeService } from './internal/node-service.js'
import { proxyService } from './internal/proxy-service.js'
import type { Clock } from './lifecycle/clock.js'
import { type LifecycleDeps, LifecycleEngine } from './lifecycle/engine.js'
import { startNodeSync } from './lifecycle/node-sync.js'
import { startNodeHealth } from './placement/health.js'
import { Placement, parseNodeList } from './placement/nodes.js'
import { type Db, isPostgres, openDatabase } from './store/db.js'
import { onEventsAnnounced, purgeEvents } from './store/events.js'
import { takeLease } from './store/replicas.js'
import { sandboxesByIds, sandboxesInStates } from './store/sandbox-reads.js'
import { purgeTombstones } from './store/sandboxes.js'
import { createFirstApiKey, ensureDefaultTeam, type Team } from './store/teams.js'
import { failInterruptedBuilds } from './store/template-builds.js'
import { purgeDeliveries } from './store/webhooks.js'
import { runBuild } from './templates/build-runner.js'
import { TemplateFiles } from './templates/files.js'
import { VolumeContentProxy } from './volumes/content-proxy.js'
import { recoverVolumes } from './volumes/manage.js'
import { WebhookDeliverer } from './webhooks/deliverer.js'

/** Internal calls made continually (catalog, keepalive, heartbeats): not logged one by one. */
const QUIET_INTERNAL_RPCS = new Set([
  'watchCatalog',
  'getRoute',
  'keepAliveSandbox',
  'heartbeat',
  'listNodes',
])

/** How often each replica looks for events written through other replicas. */
const EVENT_POLL_MS = 250

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

/** A node the API reaches without a network hop, and the URL of its RPC port (its volume files). */
export interface LocalNode {
  transport: Transport
  url: string
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
  nodes: Array<Transport | LocalNode> = [],
  opts: {
    clock?: Clock
    replication?: LifecycleDeps['replication']
    clusterSecret?: string
  } = {},
): Promise<ApiService> {
  // Every internal port and every call between components carries it.
  const secret = opts.clusterSecret ?? resolveClusterSecret(cfg)
  const cluster = { secret, ca: readClusterCa(cfg.clusterCa) }
  // Nodes of a remote cluster are called with its secret (the one they heartbeat with).
  const dial = (url: string, nodeSecret = secret) =>
    clusterTransport(url, { ...cluster, secret: nodeSecret })
  const db = await openDatabase(databaseUrl(cfg))
  const team = await ensureDefaultTeam(db, cfg)
  // Made once, also when replicas start together.
  const createdKey = await createFirstApiKey(db, team.id)

  const placement = new Placement(log, dial)
  for (const n of nodes) {
    if ('transport' in n) await placement.register(n.transport, undefined, n.url)
    else await placement.register(n)
  }
  // Configured nodes are known by id: one that is down now is registered
  // unhealthy, and the health loop brings it in when it answers. Others
  // register themselves with their heartbeats.
  for (const n of parseNodeList(cfg.nodes ?? ''))
    await placement.register(dial(n.url), n.nodeId, n.url)
  // Nodes that hold sandboxes but are not known yet (they register with
  // their heartbeats) get their grace period from now.
  for (const s of await sandboxesInStates(db, ['running', 'paused']))
    if (!placement.find(s.nodeId)) placement.awaitRegistration(s.nodeId, s.cluster)
  if (!placement.list().length)
    log.warn(
      'no orchestrator node yet: creates fail until a node registers (WARREN_API_INTERNAL_URL on the nodes)',
    )

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
  // What a node reports exited is killed (reason `exited`).
  placement.onExit((e) => {
    void engine
      .killExited(e.nodeId, e.sandboxId, e.detail, e.oom)
      .catch((err: unknown) =>
        log.warn({ err, sandboxId: e.sandboxId }, 'killing an exited sandbox failed'),
      )
  })
  const health = startNodeHealth({
    placement,
    unhealthyAfterMs: cfg.nodeUnhealthyAfterS * 1000,
    lostAfterMs: cfg.nodeLostAfterS * 1000,
    intervalMs: cfg.nodePollIntervalMs,
    onLost: async (node) => {
      await engine.reportNodeLost(node.nodeId)
    },
    log,
  })
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

  const volumes = {
    db,
    placement,
    clock,
    log,
    defaultSizeMb: cfg.volumeSizeMb,
    content: new VolumeContentProxy(db, placement, cluster),
  }
  // An unfinished volume create or delete is an earlier process's only with
  // one process (SQLite); with several replicas it may be a live replica's,
  // and volumes have no owner to take over yet (docs/architecture.md, known gaps).
  if (!isPostgres(db)) await recoverVolumes(volumes)

  // Lifecycle events: every replica follows the log (its streams read it)
  // and delivers webhooks (each delivery claimed by one replica).
  const tail = new EventTail(db, EVENT_POLL_MS, log)
  await tail.start()
  const events = new EventStreams(db, tail)
  const deliverer = new WebhookDeliverer(
    db,
    {
      concurrency: cfg.webhookConcurrency,
      maxAttempts: cfg.webhookMaxAttempts,
      retryBaseMs: cfg.webhookRetryBaseMs,
      allowPrivate: cfg.webhookAllowPrivate,
    },
    () => engine.replicaId,
    log,
  )
  deliverer.start()
  const stopPoking = onEventsAnnounced(db, () => deliverer.poke())

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
      volumes,
      ownCluster: cfg.clusterName,
      teamDefaults: { maxConcurrent: cfg.maxConcurrentSandboxes, maxLifetimeS: cfg.maxLifetimeS },
      events,
      webhooks: { allowPrivate: cfg.webhookAllowPrivate },
    },
    log,
  )
  const onInternal = (err: unknown) => log.error({ err }, 'internal rpc failed')
  // Outermost first: the caller's request id, a line per call (not the
  // polls and streams every proxy and node keeps up), the error contract.
  const internalInterceptors = [
    requestIdInterceptor(),
    rpcLogInterceptor(log, QUIET_INTERNAL_RPCS),
    errorInterceptor(onInternal),
  ]
  const proxyImpl = proxyService(catalog, engine, {
    read: async (id) => (await sandboxesByIds(db, [id]))[0],
    routesFromStore: isPostgres(db),
  })
  const nodeImpl = nodeService(placement, engine, { ownName: cfg.clusterName })
  // The all-in-one's edge, in process, is the API's own cluster's.
  const proxyTransport = createRouterTransport((r) => r.service(ProxyService, proxyImpl), {
    router: { interceptors: [...internalInterceptors, ownCaller(secret)] },
  })

  let stops: Array<() => Promise<void>> = []
  // The internal RPC serves proxies (WARREN_API_INTERNAL_URL): one address.
  const internalHost = cfg.listenHost ?? '127.0.0.1'
  // Tombstones are forgotten in bounded batches, by the store and by the
  // catalog (and so by every proxy following it; other replicas' catalogs
  // hear of the deletes from the store), at most half a TTL (and at most a
  // minute) after they expire; by one replica at a time.
  const purgeMs = Math.min(60_000, Math.max(1000, cfg.tombstoneTtlS * 500))
  const purgeOnce = leased(db, engine, 'tombstone-purge', purgeMs, async () => {
    const ids = await purgeTombstones(db, clock.now() - cfg.tombstoneTtlS * 1000)
    for (const id of ids) catalog.remove(id)
    if (ids.length) log.debug({ n: ids.length }, 'tombstones purged')
    // Events and finished deliveries by the host's clock, which wrote them.
    const keptFrom = Date.now() - cfg.eventsRetentionS * 1000
    const n = (await purgeEvents(db, keptFrom)) + (await purgeDeliveries(db, keptFrom))
    if (n) log.debug({ n }, 'events and webhook deliveries purged')
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
        cleanup.push('api server', () => closeListening(api))
        const internal = await listenInternal()
        cleanup.release()
        stops = [() => closeListening(api), () => closeServer(internal.server)]
        templates.selfUrl.current = api.listening.url
        return { url: api.listening.url, internalUrl: internal.url }
      } catch (err) {
        for (const e of await cleanup.run()) log.warn({ err: e }, 'listen: cleanup failed')
        throw err
      }
    },
    async stop() {
      clearInterval(purge)
      health.stop()
      sync.stop()
      // Streams end first, or the server's close would wait for them.
      events.closeAll()
      await Promise.all(stops.map((stop) => stop()))
      stopPoking()
      await deliverer.stop()
      await tail.stop()
      // Running builds end as errors (their node stops them when the stream closes).
      stopping.abort()
      await Promise.allSettled([...builds])
      await volumes.content.close()
      await engine.stop()
      await db.destroy()
    },
  }

  /** The REST API, on both loopbacks unless a listen host is configured. */
  async function listenRest(): Promise<{ server: Server; listening: Listening }> {
    const server = createAdaptorServer({ fetch: app.fetch }) as Server
    keepConnectionsLong(server)
    const listening = await listenOn(server, cfg.port, cfg.listenHost, (host, err) =>
      log.warn({ host, err: err.message }, 'not listening on this loopback'),
    )
    return { server, listening }
  }

  async function listenInternal(): Promise<{ server: Server; url: string }> {
    const tls = readInternalTls(cfg)
    // Nothing on this port answers anyone without a cluster secret: the
    // catalog holds traffic tokens, and ResumeSandbox and KeepAliveSandbox
    // change sandboxes. /metrics counts every cluster: the API's own secret
    // (or the scrape token) only.
    const gate = createClusterGate({
      db,
      secret,
      what: "the API's internal RPC",
      log,
      own: { '/metrics': cfg.metricsToken ? [cfg.metricsToken] : [] },
    })
    const handler = connectNodeAdapter({
      routes: (r) => {
        r.service(ProxyService, proxyImpl)
        r.service(NodeService, nodeImpl)
      },
      interceptors: internalInterceptors,
      // The cluster the gate found the caller to be, for the handlers.
      contextValues: gate.contextValues,
      // Prometheus text next to the internal RPC, behind the same secret
      // (or WARREN_METRICS_TOKEN, for a scraper that holds no more).
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
    })
    const internal = createInternalServer(gate.guard(handler), tls)
    const url = await listen(internal, internalHost, cfg.internalPort)
    return { server: internal, url: url.replace(/^http:/, `${schemeOf(tls)}:`) }
  }
}

/** Stops every listener of the REST API, then ends its connections. */
async function closeListening(api: { server: Server; listening: Listening }): Promise<void> {
  const closed = Promise.all([api.listening.close(), closeServer(api.server)])
  api.server.closeAllConnections?.()
  await closed
}
