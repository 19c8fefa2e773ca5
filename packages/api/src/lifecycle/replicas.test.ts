// Two API replicas in process on one real, private PostgreSQL, sharing a
// stand-in node and a manual clock: team limits hold across them, each
// expiry fires on exactly one, a catalog change made on one reaches the
// other's subscribers, and the work a replica leaves halfway when it dies is
// settled by the other.
import { setTimeout as sleep } from 'node:timers/promises'
import { RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type PrivatePostgres, startPostgres } from '../../../../tests/helpers/postgres.js'
import { ACTIVE_STATES as ACTIVE, sandboxesInStates } from '../store/sandboxes.js'
import {
  type InProcessApi,
  type InProcessOptions,
  REPLICATION,
  startInProcessApi,
} from '../testing/in-process.js'
import { ManualClock } from '../testing/manual-clock.js'
import { StandInNode } from '../testing/stand-in-node.js'

let server: PrivatePostgres
let databases = 0
const open: InProcessApi[] = []

beforeAll(async () => {
  server = await startPostgres()
}, 60_000)
afterAll(() => server?.stop())
afterEach(async () => {
  for (const api of open.splice(0)) await api.close()
})

/** Two replicas of one fresh database, one stand-in node and one clock. */
async function replicas(opts: InProcessOptions = {}): Promise<[InProcessApi, InProcessApi]> {
  const databaseUrl = await server.createDatabase(`replicas_${++databases}`)
  const node = new StandInNode()
  node.memoryMbTotal = 1 << 20
  const clock = new ManualClock()
  const [a, b] = await Promise.all(
    [1, 2].map(() => startInProcessApi({ ...opts, databaseUrl, nodes: [node], clock })),
  )
  open.push(a!, b!)
  node.calls.length = 0
  return [a!, b!]
}

/** Moves the shared clock in poll-sized steps; both replicas' expiries finish at each. */
async function tickBoth(apis: InProcessApi[], ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= REPLICATION.pollMs) {
    apis[0]!.clock.advance(Math.min(left, REPLICATION.pollMs))
    await Promise.all(apis.map((a) => a.engine.scheduler.idle()))
  }
}

/** Polls `check` until it holds (real time: the feed and heartbeats run on it). */
async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 5000) {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`)
    await sleep(20)
  }
}

/** A replica dies: its loops stop and its heartbeat goes stale; the other takes over. */
async function crashAndTakeOver(dead: InProcessApi, live: InProcessApi): Promise<void> {
  await dead.engine.replication!.halt()
  await sleep(REPLICATION.staleMs + 200)
  await live.engine.replication!.takeOver()
}

describe('team limits across replicas', () => {
  it('concurrent creates on both replicas against a limit of N: exactly N succeed', async () => {
    const N = 5
    const [a, b] = await replicas({ maxConcurrent: N })
    const res = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        (i % 2 ? a : b).request('POST', '/v2/sandboxes', { json: { templateID: 'base' } }),
      ),
    )
    const statuses = res.map((r) => r.status)
    expect(statuses.filter((s) => s === 201)).toHaveLength(N)
    expect(statuses.filter((s) => s !== 201).every((s) => s === 429)).toBe(true)
    expect(await sandboxesInStates(a.db, ACTIVE)).toHaveLength(N)
    expect(a.node.sandboxes.size).toBe(N)
  })

  it('resumes on both replicas take the last places once each', async () => {
    const [a, b] = await replicas({ maxConcurrent: 3 })
    const ids = [await a.create(), await a.create(), await b.create()]
    for (const id of ids)
      expect((await a.request('POST', `/sandboxes/${id}/pause`)).status).toBe(204)
    await a.create()
    await b.create()
    // One place is left and three paused sandboxes want it, from both replicas.
    const res = await Promise.all(
      ids.map((id, i) =>
        (i % 2 ? a : b).request('POST', `/sandboxes/${id}/connect`, { json: { timeout: 60 } }),
      ),
    )
    expect(res.map((r) => r.status).sort()).toEqual([201, 429, 429])
    expect(await sandboxesInStates(a.db, ACTIVE)).toHaveLength(3)
  })
})

describe('expiry across replicas', () => {
  it('each of many expiries fires once, on one replica, within a poll of its endAt', async () => {
    const [a, b] = await replicas({ maxConcurrent: 1000 })
    // A storm (120 with one deadline) and a spread (80 over 8 s).
    const ids: string[] = []
    for (let i = 0; i < 200; i++) {
      const timeout = i < 120 ? 5 : 1 + (i % 8)
      ids.push(await (i % 2 ? a : b).create({ templateID: 'base', timeout }))
    }
    const rows = new Map((await a.rows()).map((r) => [r.sandboxId, r]))
    await tickBoth([a, b], 10_000)
    const after = await a.rows()
    expect(after.every((r) => r.state === 'killed' && r.killReason === 'timeout')).toBe(true)
    for (const r of after) {
      const late = r.killedAt! - rows.get(r.sandboxId)!.endAt
      expect(late).toBeGreaterThanOrEqual(0)
      expect(late).toBeLessThanOrEqual(REPLICATION.pollMs)
    }
    const kills = a.node.callsOf('kill').map((c) => c.sandboxId)
    expect(kills.sort()).toEqual([...ids].sort())
    // Both replicas took part: the storm was more than one replica's backlog.
    const byReplica = await Promise.all(
      [a, b].map(async (r) => (await r.engine.metrics.killed.get()).values[0]?.value ?? 0),
    )
    expect(byReplica[0]! + byReplica[1]!).toBe(200)
    expect(byReplica.every((n) => n > 0)).toBe(true)
  })

  it('an extension committed on one replica before the deadline moves the expiry on the other', async () => {
    const [a, b] = await replicas()
    const id = await a.create({ templateID: 'base', timeout: 10 })
    await tickBoth([a, b], 9_000)
    expect(
      (await b.request('POST', `/sandboxes/${id}/timeout`, { json: { timeout: 5 } })).status,
    ).toBe(204)
    await tickBoth([a, b], 4_900)
    expect((await a.row(id)).state).toBe('running')
    await tickBoth([a, b], 200)
    expect(await a.row(id)).toMatchObject({ state: 'killed', killReason: 'timeout' })
    expect(a.node.callsOf('kill')).toHaveLength(1)
  })
})

describe('the catalog across replicas', () => {
  it('a change on replica A reaches a subscriber of replica B, in order', async () => {
    const [a, b] = await replicas()
    const seen: string[] = []
    b.catalog.subscribe((ev) => {
      if (ev.event.case === 'upsert')
        seen.push(`${ev.event.value.sandboxId} ${RouteState[ev.event.value.state]}`)
      if (ev.event.case === 'remove') seen.push(`${ev.event.value} removed`)
    })
    const id = await a.create()
    await eventually('B sees the create', () => seen.includes(`${id} RUNNING`))
    expect((await a.request('POST', `/sandboxes/${id}/pause`)).status).toBe(204)
    expect((await a.request('DELETE', `/sandboxes/${id}`)).status).toBe(204)
    await eventually('B sees the kill', () => seen.includes(`${id} KILLED`))
    // B's view only moves forward: each state once, in the order A made them.
    const states = seen.filter((s) => s.startsWith(id)).map((s) => s.split(' ')[1])
    expect(states.filter((s, i) => s !== states[i - 1])).toEqual(
      ['RUNNING', 'PAUSING', 'PAUSED', 'KILLED'].filter((s) => states.includes(s)),
    )
    expect(states.at(-1)).toBe('KILLED')
    expect(b.catalog.get(id)?.killReason).toBe('request')
  })

  it('after its listening connection is cut, B reloads and misses nothing', async () => {
    const [a, b] = await replicas()
    const kept = await a.create()
    const gone = await a.create()
    await eventually('B knows both', () => !!b.catalog.get(kept) && !!b.catalog.get(gone))
    const feed = b.engine.replication!.feed
    const reloads = feed.reloads
    feed.breakConnection()
    // Changes while B is not listening: only the reload brings them.
    expect((await a.request('DELETE', `/sandboxes/${gone}`)).status).toBe(204)
    const added = await a.create()
    await eventually('B reconnected', () => feed.reloads > reloads)
    await eventually('B caught up', () => b.catalog.get(added)?.state === RouteState.RUNNING)
    expect(b.catalog.get(gone)?.state).toBe(RouteState.KILLED)
    expect(b.catalog.get(kept)?.state).toBe(RouteState.RUNNING)
  })
})

describe('a replica that dies halfway', () => {
  it('in a create: the other kills what it may have left, and its late write loses', async () => {
    const [a, b] = await replicas({ maxConcurrent: 1 })
    const gate = a.node.hold('create')
    const creating = a.request('POST', '/v2/sandboxes', { json: { templateID: 'base' } })
    await gate.entered
    const [row] = await sandboxesInStates(a.db, ['creating'])
    await crashAndTakeOver(a, b)
    expect(await b.row(row!.sandboxId)).toMatchObject({ state: 'killed', killReason: 'orphaned' })
    // The dead replica's create reaches the node after all: it must not stay.
    gate.release()
    expect((await creating).status).toBe(500)
    expect(a.node.sandboxes.size).toBe(0)
    expect(await b.row(row!.sandboxId)).toMatchObject({ state: 'killed' })
    // The team's only place is free again.
    await b.create()
  })

  it('in a pause: the other finishes the pause', async () => {
    const [a, b] = await replicas()
    const id = await a.create()
    const gate = a.node.hold('pause')
    const pausing = a.request('POST', `/sandboxes/${id}/pause`)
    await gate.entered
    await crashAndTakeOver(a, b)
    expect(await b.row(id)).toMatchObject({ state: 'paused', pausedKind: 'memory', owner: null })
    gate.release()
    expect((await pausing).status).toBe(409)
    expect(a.node.sandboxes.get(id)?.state).toBe('paused')
    expect((await b.row(id)).state).toBe('paused')
    await eventually('B routes it as paused', () => b.catalog.get(id)?.state === RouteState.PAUSED)
  })

  it('in a resume: the other finishes the resume with a fresh lease', async () => {
    const [a, b] = await replicas()
    const id = await a.create({ templateID: 'base', timeout: 60 })
    expect((await a.request('POST', `/sandboxes/${id}/pause`)).status).toBe(204)
    const gate = a.node.hold('resume')
    const resuming = a.request('POST', `/sandboxes/${id}/connect`, { json: { timeout: 60 } })
    await gate.entered
    await crashAndTakeOver(a, b)
    const row = await b.row(id)
    expect(row).toMatchObject({ state: 'running', owner: null })
    expect(row.endAt).toBe(b.clock.now() + 60_000)
    gate.release()
    expect((await resuming).status).toBe(409)
    expect(a.node.sandboxes.get(id)?.state).toBe('running')
    await eventually(
      'B routes it as running',
      () => b.catalog.get(id)?.state === RouteState.RUNNING,
    )
  })

  it('in an expiry: the kills it claimed are finished by the other, one node kill each', async () => {
    const [a, b] = await replicas({ maxConcurrent: 100, maxConcurrentExpiries: 1 })
    const ids: string[] = []
    // As many as A's backlog (8 per expiry slot) takes in one claim.
    for (let i = 0; i < 8; i++) ids.push(await a.create({ templateID: 'base', timeout: 5 }))
    await b.engine.scheduler.stop() // only A claims (B lives on)
    const gate = a.node.hold('kill')
    a.clock.advance(5_000)
    await gate.entered
    // A claimed all eight (they expired: killing, reason timeout) and is at the first kill.
    expect(await sandboxesInStates(a.db, ['killing'])).toHaveLength(8)
    await crashAndTakeOver(a, b)
    const after = await b.rows()
    expect(after.map((r) => [r.state, r.killReason])).toEqual(ids.map(() => ['killed', 'timeout']))
    expect(a.node.sandboxes.size).toBe(0)
    // The dead replica's one call under way reaches the node late and finds nothing.
    gate.release()
    await a.engine.scheduler.idle()
    const kills = a.node.callsOf('kill').map((c) => c.sandboxId)
    expect(new Set(kills)).toEqual(new Set(ids))
    expect(kills).toHaveLength(9)
    expect((await b.rows()).every((r) => r.state === 'killed')).toBe(true)
  })
})
