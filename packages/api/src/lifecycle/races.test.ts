// Lifecycle races through the API, in process: requests that overlap each
// other, the expiry and the node's own work end in one consistent state, and
// each loser gets a clear 404/409. The stand-in node holds a call at a gate
// to keep an operation halfway; the manual clock decides when expiries fire.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { expectApiError } from '../testing/assertions.js'
import { type InProcessApi, settle, startInProcessApi } from '../testing/in-process.js'

let api: InProcessApi
const onPostgres = process.env.WARREN_TEST_DATABASE === 'postgres'
beforeEach(async () => {
  api = await startInProcessApi()
})
afterEach(() => api.close())

const kill = (id: string) => api.request('DELETE', `/sandboxes/${id}`)
const pause = (id: string) => api.request('POST', `/sandboxes/${id}/pause`, { json: {} })
const connect = (id: string, v2 = true) =>
  api.request('POST', `${v2 ? '/v2' : ''}/sandboxes/${id}/connect`, { json: { timeout: 60 } })
const setTimeoutS = (id: string, timeout: number) =>
  api.request('POST', `/sandboxes/${id}/timeout`, { json: { timeout } })
const refresh = (id: string, duration: number) =>
  api.request('POST', `/sandboxes/${id}/refreshes`, { json: { duration } })
const mutations = () => api.node.callsOf('create', 'kill', 'pause', 'resume').map((c) => c.method)

async function paused(): Promise<string> {
  const id = await api.create({ templateID: 'base', timeout: 300 })
  expect((await pause(id)).status).toBe(204)
  api.node.calls.length = 0
  return id
}

describe('set-timeout against set-timeout', () => {
  // Both calls read before either writes only when the store answers within
  // the same event-loop turns (SQLite in process); over PostgreSQL's socket
  // the first may commit before the second reads, and both then win in turn.
  it.skipIf(onPostgres)(
    'of two concurrent calls one wins by version; the other gets 409',
    async () => {
      const id = await api.create({ templateID: 'base', timeout: 300 })
      const before = await api.row(id)
      const [a, b] = await Promise.all([setTimeoutS(id, 60), setTimeoutS(id, 120)])
      expect([a.status, b.status].sort()).toEqual([204, 409])
      expectApiError(a.status === 409 ? a : b, 409, /changed by a concurrent request/)
      const won = a.status === 204 ? 60 : 120
      const after = await api.row(id)
      expect(after).toMatchObject({ state: 'running', version: before.version + 1 })
      expect(after.endAt).toBe(api.clock.now() + won * 1000)
      // The winner's deadline is the one the scheduler keeps.
      await api.tick(won * 1000 - 1)
      expect((await api.row(id)).state).toBe('running')
      await api.tick(1)
      expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'timeout' })
    },
  )
})

describe('extensions against the expiry', () => {
  // The in-memory scheduler's queue (SQLite): with PostgreSQL an expiry is
  // claimed together with every other due row, before any extension can
  // land (expiry-poller.ts; covered in replicas.test.ts).
  it.skipIf(onPostgres)(
    'an extension that committed first wins: the due expiry loses and is rescheduled',
    async () => {
      // One expiry at a time, and the first is held at the node: the second is
      // due but waits while its sandbox's lease is extended.
      await api.close()
      api = await startInProcessApi({ maxConcurrentExpiries: 1 })
      const first = await api.create({ templateID: 'base', timeout: 10 })
      const second = await api.create({ templateID: 'base', timeout: 10 })
      const deadline = (await api.row(second)).endAt
      const gate = api.node.hold('kill')
      api.clock.advance(10_000)
      await gate.entered
      expect((await api.row(first)).state).toBe('killing')

      expect((await refresh(second, 15)).status).toBe(204)
      gate.release()
      await api.engine.scheduler.idle()

      expect(await api.row(first)).toMatchObject({ state: 'killed', killReason: 'timeout' })
      expect(await api.row(second)).toMatchObject({ state: 'running', endAt: deadline + 15_000 })
      expect(api.node.callsOf('kill').map((c) => c.sandboxId)).toEqual([first])
      await api.tick(15_000)
      expect(await api.row(second)).toMatchObject({ state: 'killed', killReason: 'timeout' })
    },
  )

  it('an extension before the deadline moves the expiry with it', async () => {
    const id = await api.create({ templateID: 'base', timeout: 10 })
    await api.tick(9_000)
    expect((await setTimeoutS(id, 30)).status).toBe(204)
    await api.tick(1_000)
    expect((await api.row(id)).state).toBe('running')
    expect(mutations()).toEqual(['create'])
    await api.tick(29_000)
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'timeout' })
  })

  it('an expiry that committed first wins: late extensions get 404 and revive nothing', async () => {
    const id = await api.create({ templateID: 'base', timeout: 10 })
    const { endAt } = await api.row(id)
    const gate = api.node.hold('kill')
    api.clock.advance(10_000)
    await gate.entered
    expectApiError(await refresh(id, 60), 404, /not found/)
    expectApiError(await setTimeoutS(id, 60), 404, /not found/)
    expectApiError(await connect(id), 404, /not found/)
    gate.release()
    await api.engine.scheduler.idle()
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'timeout', endAt })
  })

  it('set-timeout 0 expires the sandbox now', async () => {
    const id = await api.create({ templateID: 'base', timeout: 300 })
    expect((await setTimeoutS(id, 0)).status).toBe(204)
    await api.tick(0)
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'timeout' })
    expect(api.node.sandboxes.has(id)).toBe(false)
  })
})

describe('kill against resume and pause', () => {
  it('a kill during a resume gets 409; the resume completes', async () => {
    const id = await paused()
    const gate = api.node.hold('resume')
    const resuming = connect(id)
    await gate.entered
    expectApiError(await kill(id), 409, /resuming; try again when it settles/)
    gate.release()
    expect((await resuming).status).toBe(201)
    expect(await api.row(id)).toMatchObject({ state: 'running', killReason: null })
    expect(mutations()).toEqual(['resume'])
  })

  it('a resume during a kill gets 404; the kill completes', async () => {
    const id = await paused()
    const gate = api.node.hold('kill')
    const killing = kill(id)
    await gate.entered
    expectApiError(await connect(id), 404, /not found/)
    expectApiError(await api.request('POST', `/sandboxes/${id}/resume`), 404, /not found/)
    gate.release()
    expect((await killing).status).toBe(204)
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'request' })
    expect(mutations()).toEqual(['kill'])
  })

  it('a kill during a pause gets 409; the pause completes', async () => {
    const id = await api.create()
    const gate = api.node.hold('pause')
    const pausing = pause(id)
    await gate.entered
    expectApiError(await kill(id), 409, /pausing; try again when it settles/)
    gate.release()
    expect((await pausing).status).toBe(204)
    expect(await api.row(id)).toMatchObject({ state: 'paused', pausedKind: 'memory' })
    expect(mutations()).toEqual(['create', 'pause'])
  })

  it('a pause during a kill gets 404; the kill completes', async () => {
    const id = await api.create()
    const gate = api.node.hold('kill')
    const killing = kill(id)
    await gate.entered
    expectApiError(await pause(id), 404, /not found/)
    gate.release()
    expect((await killing).status).toBe(204)
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'request' })
    expect(mutations()).toEqual(['create', 'kill'])
  })
})

describe('concurrent calls of one kind', () => {
  it('of concurrent kills one gets 204, the others 404; the node is asked once', async () => {
    const id = await api.create()
    const gate = api.node.hold('kill')
    const kills = [kill(id), kill(id), kill(id), kill(id)]
    await gate.entered
    await settle()
    gate.release()
    const res = await Promise.all(kills)
    expect(res.map((r) => r.status).sort()).toEqual([204, 404, 404, 404])
    for (const r of res.filter((r) => r.status === 404)) expectApiError(r, 404, /not found/)
    expect(await api.row(id)).toMatchObject({ state: 'killed', killReason: 'request' })
    expect(api.node.callsOf('kill')).toHaveLength(1)
  })

  it('concurrent resumes share one node call and all answer 201', async () => {
    const id = await paused()
    const gate = api.node.hold('resume')
    const resumes = [
      connect(id),
      connect(id, false),
      connect(id),
      api.request('POST', `/sandboxes/${id}/resume`, { json: { timeout: 60 } }),
    ]
    await gate.entered
    await settle()
    gate.release()
    const res = await Promise.all(resumes)
    expect(res.map((r) => r.status)).toEqual([201, 201, 201, 201])
    expect(new Set(res.map((r) => r.text)).size).toBe(1)
    expect(await api.row(id)).toMatchObject({ state: 'running', resumedFrom: 'memory' })
    expect(mutations()).toEqual(['resume'])
  })
})

describe('traffic against a pause', () => {
  const autoResume = { onTimeout: 'pause', autoResume: true }

  it('traffic that finds the sandbox pausing waits for the pause, then one resume serves it all', async () => {
    const id = await api.create({ templateID: 'base', timeout: 300, lifecycle: autoResume })
    api.node.calls.length = 0
    // The lease runs out: the expiry pauses the sandbox, held halfway at the node.
    const gate = api.node.hold('pause')
    api.clock.advance(300_000)
    await gate.entered
    expect((await api.row(id)).state).toBe('pausing')
    const traffic = Promise.all(Array.from({ length: 5 }, () => api.engine.resumeForTraffic(id)))
    await settle()
    expect(mutations()).toEqual(['pause'])
    gate.release()
    for (const s of await traffic) expect(s.state).toBe('running')
    expect(mutations()).toEqual(['pause', 'resume'])
    expect(await api.row(id)).toMatchObject({ state: 'running', resumedFrom: 'memory' })
  })

  it('a files-only pause that traffic caught is judged once it is over: it stays paused', async () => {
    const id = await api.create({ templateID: 'base', timeout: 300, lifecycle: autoResume })
    api.node.calls.length = 0
    const gate = api.node.hold('pause')
    const pausing = api.request('POST', `/sandboxes/${id}/pause`, { json: { memory: false } })
    await gate.entered
    const traffic = api.engine.resumeForTraffic(id).catch((err: unknown) => err)
    await settle()
    gate.release()
    expect((await pausing).status).toBe(204)
    expect(String(await traffic)).toMatch(/paused without memory/)
    expect(mutations()).toEqual(['pause'])
    expect((await api.row(id)).state).toBe('paused')
  })
})
