import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CleanupStack } from '@warren/shared'
import { pino } from 'pino'
import { type PrivatePostgres, startPostgres } from '../../../../tests/helpers/postgres.js'
import { Catalog } from '../catalog/catalog.js'
import { EventStreams } from '../events/streams.js'
import { EventTail } from '../events/tail.js'
import { createApiApp } from '../http/app.js'
import { LifecycleEngine } from '../lifecycle/engine.js'
import { ExpiryPoller } from '../lifecycle/expiry-poller.js'
import type { ReplicationOptions } from '../lifecycle/replication.js'
import { Placement } from '../placement/nodes.js'
import { type Db, openDatabase } from '../store/db.js'
import { onEventsAnnounced } from '../store/events.js'
import { getSandbox, type Sandbox, sandboxesInStates } from '../store/sandboxes.js'
import type { SandboxState } from '../store/schema.js'
import { createApiKey, ensureDefaultTeam, type Team } from '../store/teams.js'
import { TemplateFiles } from '../templates/files.js'
import { VolumeContentProxy } from '../volumes/content-proxy.js'
import { type DelivererOptions, WebhookDeliverer } from '../webhooks/deliverer.js'
import { ManualClock } from './manual-clock.js'
import { StandInNode } from './stand-in-node.js'

export interface RequestOptions {
  /** Sent as JSON with `content-type: application/json`. */
  json?: unknown
  /** Sent verbatim (with `contentType`, default application/json). */
  raw?: string
  contentType?: string
  /** The X-API-Key to send: the harness's key by default, none when null. */
  key?: string | null
  headers?: Record<string, string>
}

export interface ApiResponse {
  status: number
  headers: Headers
  /** The parsed JSON body; undefined when empty or not JSON. */
  body: unknown
  text: string
}

export interface InProcessOptions {
  maxConcurrent?: number
  maxLifetimeS?: number
  defaultTimeoutS?: number
  maxConcurrentExpiries?: number
  /** The nodes sandboxes are placed on; one stand-in by default. */
  nodes?: StandInNode[]
  /**
   * The store: a SQLite file in a temp dir by default; a `postgres://` URL
   * makes this API one replica of that store (give every replica the same
   * URL, nodes and clock). The harness never drops a PostgreSQL database.
   */
  databaseUrl?: string
  /** Shared by replicas of one store; a new one by default. */
  clock?: ManualClock
  /** Replica-set tuning (PostgreSQL); short by default (see REPLICATION). */
  replication?: Partial<ReplicationOptions>
  /** Webhook deliveries are made (by a deliverer of this harness) with these options. */
  webhooks?: Partial<DelivererOptions>
}

/**
 * Replicas in tests: heartbeats and staleness in real (store) time, short;
 * the expiry poll follows the manual clock; takeover passes only when a test
 * asks (`engine.replication.takeOver()`).
 */
export const REPLICATION: ReplicationOptions = {
  heartbeatMs: 50,
  staleMs: 400,
  takeoverIntervalMs: 3_600_000,
  pollMs: 100,
}

export interface InProcessApi {
  clock: ManualClock
  /** The first node (the only one unless `nodes` were given). */
  node: StandInNode
  db: Db
  engine: LifecycleEngine
  catalog: Catalog
  team: Team
  apiKey: string
  /** This harness's webhook deliverer, when `webhooks` options were given. */
  deliverer: WebhookDeliverer | undefined
  /** The raw answer (an event stream's body is read by the test). */
  fetch(path: string, opts?: RequestOptions & { signal?: AbortSignal }): Promise<Response>
  request(method: string, path: string, opts?: RequestOptions): Promise<ApiResponse>
  /** Creates a sandbox through the API (201 or throws) and returns its id. */
  create(json?: Record<string, unknown>): Promise<string>
  /** The sandbox's row in the store (throws when there is none). */
  row(sandboxId: string): Promise<Sandbox>
  /** Every row of the store, by id. */
  rows(): Promise<Sandbox[]>
  /** Moves the clock by `ms` and waits for the expiries that fell due to finish. */
  tick(ms: number): Promise<void>
  close(): Promise<void>
}

const ALL_STATES: SandboxState[] = [
  'creating',
  'running',
  'pausing',
  'paused',
  'resuming',
  'killing',
  'killed',
]

/**
 * The API as `createApiService` wires it — store, default team and key,
 * placement, catalog, lifecycle engine, Hono app — over a SQLite file in a
 * temp dir, stand-in nodes and a manual clock, driven through `app.request()`:
 * no ports, no root, no real sandboxes, no background loops but the expiry
 * scheduler (which only fires when the test moves the clock).
 */
export async function startInProcessApi(opts: InProcessOptions = {}): Promise<InProcessApi> {
  const cleanup = new CleanupStack()
  try {
    const dir = mkdtempSync(join(tmpdir(), 'warren-api-test-'))
    cleanup.push('temp dir', () => rmSync(dir, { recursive: true, force: true }))
    const url =
      opts.databaseUrl ??
      (process.env.WARREN_TEST_DATABASE === 'postgres'
        ? await freshPostgresDatabase()
        : `sqlite:${join(dir, 'warren.db')}`)
    const db = await openDatabase(url, { poolSize: 4 })
    cleanup.push('store', () => db.destroy())
    const team = await ensureDefaultTeam(db, {
      maxConcurrentSandboxes: opts.maxConcurrent ?? 100,
      maxLifetimeS: opts.maxLifetimeS ?? 86_400,
    })
    const { key: apiKey } = await createApiKey(db, team.id, 'in-process test')

    const log = pino({ level: process.env.WARREN_LOG_LEVEL ?? 'silent' })
    const nodes = opts.nodes ?? [new StandInNode()]
    const placement = new Placement(log)
    for (const n of nodes) await placement.register(n.transport)
    const catalog = new Catalog(
      (nodeId) => placement.list().find((n) => n.nodeId === nodeId)?.proxyUrl,
    )
    const clock = opts.clock ?? new ManualClock()
    const replication = { ...REPLICATION, ...opts.replication }
    const engine = new LifecycleEngine({
      db,
      placement,
      catalog,
      log,
      maxConcurrentExpiries: opts.maxConcurrentExpiries ?? 8,
      clock,
      replication,
    })
    await engine.start()
    cleanup.push('engine', () => engine.stop())
    const tail = new EventTail(db, 50, log)
    await tail.start()
    cleanup.push('event tail', () => tail.stop())
    const events = new EventStreams(db, tail, 1000)
    cleanup.push('event streams', async () => events.closeAll())
    const allowPrivate = opts.webhooks?.allowPrivate ?? false
    let deliverer: WebhookDeliverer | undefined
    if (opts.webhooks) {
      const d = new WebhookDeliverer(
        db,
        {
          concurrency: 8,
          maxAttempts: 10,
          retryBaseMs: 100,
          allowPrivate,
          pollMs: 50,
          timeoutMs: 2000,
          ...opts.webhooks,
        },
        () => engine.replicaId,
        log,
      )
      d.start()
      const stopPoking = onEventsAnnounced(db, () => d.poke())
      cleanup.push('webhook deliverer', async () => {
        stopPoking()
        await d.stop()
      })
      deliverer = d
    }
    const volumeDeps = {
      db,
      placement,
      clock,
      log,
      defaultSizeMb: 64,
      content: new VolumeContentProxy(db, placement),
    }
    const app = createApiApp(
      {
        db,
        engine,
        placement,
        view: { domain: 'sandbox.test' },
        defaultTimeoutS: opts.defaultTimeoutS ?? 300,
        clock,
        templates: {
          files: new TemplateFiles(dir),
          selfUrl: { current: 'http://api.test' },
          log,
          run: () => {},
        },
        volumes: volumeDeps,
        ownCluster: 'default',
        teamDefaults: { maxConcurrent: 10, maxLifetimeS: 3600 },
        events,
        webhooks: { allowPrivate },
      },
      log,
    )
    // Registration asked each node for its capacity: setup, not the test.
    for (const n of nodes) n.calls.length = 0

    const send = (
      method: string,
      path: string,
      o: RequestOptions & { signal?: AbortSignal } = {},
    ): Promise<Response> => {
      const headers = new Headers(o.headers)
      const key = o.key === undefined ? apiKey : o.key
      if (key !== null) headers.set('x-api-key', key)
      const body = o.json !== undefined ? JSON.stringify(o.json) : o.raw
      if (body !== undefined && !headers.has('content-type'))
        headers.set('content-type', o.contentType ?? 'application/json')
      return Promise.resolve(
        app.request(path, { method, headers, body, ...(o.signal ? { signal: o.signal } : {}) }),
      )
    }
    const request = async (method: string, path: string, o: RequestOptions = {}) => {
      const res = await send(method, path, o)
      const text = await res.text()
      return { status: res.status, headers: res.headers, body: parseJson(text), text }
    }

    const api: InProcessApi = {
      clock,
      node: nodes[0]!,
      db,
      engine,
      catalog,
      team,
      apiKey,
      deliverer,
      fetch: (path, o) => send('GET', path, o),
      request,
      async create(json = { templateID: 'base' }) {
        const res = await request('POST', '/v2/sandboxes', { json })
        const b = res.body
        if (res.status !== 201 || typeof b !== 'object' || !b || !('sandboxID' in b))
          throw new Error(`create answered ${res.status} ${res.text}`)
        return String(b.sandboxID)
      },
      async row(sandboxId) {
        const s = await getSandbox(db, sandboxId)
        if (!s) throw new Error(`no row for ${sandboxId}`)
        return s
      },
      async rows() {
        const all = await sandboxesInStates(db, ALL_STATES)
        return all.sort((a, b) => a.sandboxId.localeCompare(b.sandboxId))
      },
      async tick(ms) {
        const poller = engine.scheduler
        if (poller instanceof ExpiryPoller) {
          // The poller claims at each of its ticks: time moves in its steps
          // (and tick(0) is one poll now).
          if (ms === 0) await poller.pollNow()
          for (let left = ms; left > 0; left -= replication.pollMs) {
            clock.advance(Math.min(left, replication.pollMs))
            await poller.idle()
          }
          await poller.idle()
          return
        }
        clock.advance(ms)
        await engine.scheduler.idle()
        // An expiry may reschedule for "now" (a retry): those fire too.
        for (let i = 0; i < 10 && clock.hasDue(); i++) {
          clock.advance(0)
          await engine.scheduler.idle()
        }
      },
      async close() {
        const errors = await cleanup.run()
        if (errors.length) throw new AggregateError(errors, 'in-process API teardown failed')
      },
    }
    return api
  } catch (err) {
    await cleanup.run()
    throw err
  }
}

let shared: Promise<PrivatePostgres> | undefined
let databases = 0

/**
 * With WARREN_TEST_DATABASE=postgres every harness without a database URL
 * gets a new database on one private PostgreSQL per test process (stopped
 * when the process exits), so the in-process suites run on both stores.
 */
async function freshPostgresDatabase(): Promise<string> {
  shared ??= startPostgres()
  const server = await shared
  return server.createDatabase(`t${process.pid}_${++databases}`)
}

/**
 * Lets requests in flight run until they wait on something the test holds
 * (a gate on the node): the store and the router transport answer within a
 * few turns of the event loop.
 */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve))
  // PostgreSQL answers over a socket, in milliseconds rather than turns.
  if (process.env.WARREN_TEST_DATABASE === 'postgres')
    await new Promise<void>((resolve) => setTimeout(resolve, 100))
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined
  } catch {
    return undefined
  }
}
