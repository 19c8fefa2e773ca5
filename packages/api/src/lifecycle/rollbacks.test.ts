// Two-step lifecycle changes whose node call fails roll back, in process: the
// row returns to where it started (or goes, for a create), the team's place
// is given back, the catalog follows, the deadline is kept and failed
// expiries are tried again later on the clock.
import { WarrenError } from '@warren/shared'
import { RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { expectApiError, stateOf } from '../testing/assertions.js'
import { type InProcessApi, startInProcessApi } from '../testing/in-process.js'
import { unreachable } from '../testing/stand-in-node.js'
import { RETRY_MS } from './core.js'

let api: InProcessApi
beforeEach(async () => {
  api = await startInProcessApi({ maxConcurrent: 1 })
})
afterEach(() => api.close())

const create = () => api.request('POST', '/v2/sandboxes', { json: { templateID: 'base' } })
const kill = (id: string) => api.request('DELETE', `/sandboxes/${id}`)
const pause = (id: string) => api.request('POST', `/sandboxes/${id}/pause`, { json: {} })
const connect = (id: string) =>
  api.request('POST', `/v2/sandboxes/${id}/connect`, { json: { timeout: 60 } })
const route = (id: string) => api.catalog.get(id)?.state

describe('create', () => {
  it.each<[string, () => Error, number, RegExp]>([
    ['unreachable', unreachable, 503, /ECONNREFUSED/],
    ['out of room', () => new WarrenError('capacity_exhausted', 'no memory left'), 503, /memory/],
    ['failing', () => new WarrenError('internal', 'runc exploded'), 500, /^internal error$/],
  ])('a node %s: the row is deleted and the team place given back', async (_n, err, status, m) => {
    const before = await stateOf(api)
    api.node.failNext('create', err())
    expectApiError(await create(), status, m)
    expect(await stateOf(api)).toEqual(before)
    // The team's only place is free again: a create succeeds, the next is over the limit.
    expect((await create()).status).toBe(201)
    expectApiError(await create(), 429, /limit of 1/)
  })

  it('a create in flight holds the team place until it settles', async () => {
    const gate = api.node.hold('create')
    const first = create()
    await gate.entered
    expect((await api.rows()).map((r) => r.state)).toEqual(['creating'])
    expectApiError(await create(), 429, /limit of 1/)
    gate.fail(unreachable())
    expectApiError(await first, 503)
    expect(await api.rows()).toEqual([])
    expect((await create()).status).toBe(201)
  })
})

describe('kill', () => {
  it('an unreachable node: 503, the row back to running with its deadline', async () => {
    const id = await api.create({ templateID: 'base', timeout: 60 })
    const { endAt, version } = await api.row(id)
    api.node.failNext('kill', unreachable())
    expectApiError(await kill(id), 503, /unreachable.*not killed/)
    expect(await api.row(id)).toMatchObject({ state: 'running', killReason: null, endAt })
    expect((await api.row(id)).version).toBe(version + 2)
    expect(route(id)).toBe(RouteState.RUNNING)
    expect(api.node.sandboxes.has(id)).toBe(true)
    // Still the team's: another create is over the limit; the lease still ends at endAt.
    expectApiError(await create(), 429)
    await api.tick(60_000)
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'timeout' })
  })

  it('an unreachable node: a paused sandbox goes back to paused', async () => {
    const id = await api.create()
    expect((await pause(id)).status).toBe(204)
    api.node.failNext('kill', unreachable())
    expectApiError(await kill(id), 503)
    expect(await api.row(id)).toMatchObject({ state: 'paused', pausedKind: 'memory' })
    expect((await kill(id)).status).toBe(204)
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'request' })
  })

  it('an expiry that cannot reach the node is tried again after RETRY_MS', async () => {
    const id = await api.create({ templateID: 'base', timeout: 10 })
    api.node.failNext('kill', unreachable())
    await api.tick(10_000)
    expect(await api.row(id)).toMatchObject({ state: 'running', killReason: null })
    await api.tick(RETRY_MS - 1)
    expect(api.node.callsOf('kill')).toHaveLength(1)
    await api.tick(1)
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'timeout' })
    expect(api.node.callsOf('kill')).toHaveLength(2)
  })

  it('a node that no longer has the sandbox: killed all the same', async () => {
    const id = await api.create()
    api.node.sandboxes.delete(id)
    expect((await kill(id)).status).toBe(204)
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'request' })
  })
})

describe('pause', () => {
  it('a failed pause: the error, and the sandbox runs on with its deadline', async () => {
    const id = await api.create({ templateID: 'base', timeout: 60 })
    const { endAt } = await api.row(id)
    api.node.failNext('pause', unreachable())
    expectApiError(await pause(id), 503)
    expect(await api.row(id)).toMatchObject({ state: 'running', endAt, pausedKind: null })
    expect(route(id)).toBe(RouteState.RUNNING)
    expect(api.node.sandboxes.get(id)?.state).toBe('running')
    await api.tick(60_000)
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'timeout' })
  })

  it('a failed pause at the deadline is tried again after RETRY_MS', async () => {
    const id = await api.create({
      templateID: 'base',
      timeout: 10,
      lifecycle: { onTimeout: 'pause' },
    })
    api.node.failNext('pause', unreachable())
    await api.tick(10_000)
    expect((await api.row(id)).state).toBe('running')
    await api.tick(RETRY_MS)
    expect(await api.row(id)).toMatchObject({ state: 'paused', pausedKind: 'memory' })
    expect(api.node.callsOf('pause')).toHaveLength(2)
  })
})

describe('resume', () => {
  it('a failed resume: the error, the sandbox stays paused and its place free', async () => {
    const id = await api.create()
    expect((await pause(id)).status).toBe(204)
    api.node.failNext('resume', unreachable())
    expectApiError(await connect(id), 503)
    expect(await api.row(id)).toMatchObject({ state: 'paused', pausedKind: 'memory' })
    expect(route(id)).toBe(RouteState.PAUSED)
    expect((await connect(id)).status).toBe(201)
    expect((await api.row(id)).state).toBe('running')
  })
})
