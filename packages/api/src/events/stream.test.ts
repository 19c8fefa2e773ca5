import { afterEach, describe, expect, it } from 'vitest'
import { createApiKey, ensureTeam } from '../store/teams.js'
import { type InProcessApi, startInProcessApi } from '../testing/in-process.js'

const open: InProcessApi[] = []
afterEach(async () => {
  for (const api of open.splice(0)) await api.close()
})

async function harness(): Promise<InProcessApi> {
  const api = await startInProcessApi()
  open.push(api)
  return api
}

interface Received {
  id: string
  kind: string
  sandboxId: string
  teamId: string
  data: Record<string, unknown>
}

/**
 * An open `GET /events` whose frames are parsed as they arrive (the SSE
 * wire format: `id:` and `data:` lines, a blank line between events,
 * comments starting with ':').
 */
async function openStream(api: InProcessApi, query = '', headers: Record<string, string> = {}) {
  const ctl = new AbortController()
  const { 'x-api-key': key, ...rest } = headers
  const res = await api.fetch(`/events${query}`, {
    headers: rest,
    signal: ctl.signal,
    ...(key ? { key } : {}),
  })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toContain('text/event-stream')
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  const events: Received[] = []
  const ids: string[] = []
  let buffer = ''
  let opened = false
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      let cut = buffer.indexOf('\n\n')
      while (cut >= 0) {
        const frame = buffer.slice(0, cut)
        buffer = buffer.slice(cut + 2)
        cut = buffer.indexOf('\n\n')
        if (frame.startsWith(':')) {
          opened = true
          continue
        }
        const lines = frame.split('\n')
        const id = lines.find((l) => l.startsWith('id: '))?.slice(4)
        const data = lines
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n')
        const event = JSON.parse(data) as Received
        expect(event.id).toBe(id)
        ids.push(id!)
        events.push(event)
      }
    }
  })()
  await until('the stream opens', () => opened)
  return {
    events,
    ids,
    /** Waits until `n` events arrived. */
    async take(n: number): Promise<Received[]> {
      await until(`${n} events arrived (have ${events.length})`, () => events.length >= n)
      return events.slice(0, n)
    },
    async close() {
      ctl.abort()
      await reader.cancel().catch(() => {})
      await pump
    },
  }
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Event ids compare as their positions: `<tx>-<id>`. */
function increasing(ids: string[]): boolean {
  const pos = ids.map((i) => i.split('-').map(Number) as [number, number])
  return pos.every((p, i) => {
    const q = pos[i - 1]
    return !q || p[0] > q[0] || (p[0] === q[0] && p[1] > q[1])
  })
}

describe('GET /events', () => {
  it('streams every lifecycle change of the team, in order, with increasing ids', async () => {
    const api = await harness()
    const stream = await openStream(api)
    const id = await api.create({ templateID: 'base', timeout: 60, metadata: { app: 'a1' } })
    expect(
      (await api.request('POST', `/sandboxes/${id}/timeout`, { json: { timeout: 600 } })).status,
    ).toBe(204)
    const net = await api.request('PUT', `/sandboxes/${id}/network`, {
      json: { denyOut: ['0.0.0.0/0'], allowOut: ['1.1.1.1'] },
    })
    expect(net.status).toBe(204)
    expect((await api.request('POST', `/sandboxes/${id}/pause`)).status).toBe(204)
    expect(
      (await api.request('POST', `/sandboxes/${id}/connect`, { json: { timeout: 30 } })).status,
    ).toBe(201)
    expect((await api.request('DELETE', `/sandboxes/${id}`)).status).toBe(204)

    const got = await stream.take(6)
    expect(got.map((e) => e.kind)).toEqual([
      'created',
      'timeout_changed',
      'network_updated',
      'paused',
      'resumed',
      'killed',
    ])
    expect(got.every((e) => e.sandboxId === id && e.teamId === api.team.id)).toBe(true)
    expect(got[0]!.data).toMatchObject({ nodeId: expect.any(String) })
    expect(got[0]).toMatchObject({ metadata: { app: 'a1' } })
    expect(got[2]!.data).toMatchObject({ network: { allowOut: ['1.1.1.1'] } })
    expect(got[3]!.data).toEqual({ pausedKind: 'memory' })
    expect(got[4]!.data).toMatchObject({ resumedFrom: 'memory' })
    expect(got[5]!.data).toEqual({ reason: 'request' })
    expect(increasing(stream.ids)).toBe(true)
    await stream.close()
  })

  it('reports a kill at the deadline with its reason, and no event for a rolled-back kill', async () => {
    const api = await harness()
    const stream = await openStream(api, '?kind=killed')
    const id = await api.create({ templateID: 'base', timeout: 5 })
    await api.tick(5000)
    const [killed] = await stream.take(1)
    expect(killed).toMatchObject({ kind: 'killed', sandboxId: id, data: { reason: 'timeout' } })
    await stream.close()
  })

  it('filters by sandbox and kind, and resumes after Last-Event-ID', async () => {
    const api = await harness()
    const all = await openStream(api)
    const mine = await openStream(api, '')
    const a = await api.create()
    const b = await api.create()
    await api.request('DELETE', `/sandboxes/${a}`)
    await api.request('DELETE', `/sandboxes/${b}`)
    const four = await all.take(4)
    expect(four.map((e) => [e.kind, e.sandboxId])).toEqual([
      ['created', a],
      ['created', b],
      ['killed', a],
      ['killed', b],
    ])
    await mine.close()

    const onlyB = await openStream(api, `?sandboxId=${b}&after=0-0`)
    expect((await onlyB.take(2)).map((e) => e.kind)).toEqual(['created', 'killed'])
    const onlyKills = await openStream(api, '?kind=killed&after=0-0')
    expect((await onlyKills.take(2)).map((e) => e.sandboxId)).toEqual([a, b])

    // A client that saw the second event resumes with the third; the header wins over `after`.
    const resumed = await openStream(api, '?after=0-0', { 'last-event-id': four[1]!.id })
    expect((await resumed.take(2)).map((e) => e.id)).toEqual([four[2]!.id, four[3]!.id])
    await new Promise((r) => setTimeout(r, 200))
    expect(resumed.events).toHaveLength(2)
    for (const s of [all, onlyB, onlyKills, resumed]) await s.close()
  })

  it('shows a team only its own events', async () => {
    const api = await harness()
    const other = await ensureTeam(api.db, 'other-team', { maxConcurrent: 10, maxLifetimeS: 3600 })
    const { key } = await createApiKey(api.db, other.id, 'other')
    const theirs = await openStream(api, '?after=0-0', { 'x-api-key': key })
    const ours = await openStream(api)
    const id = await api.create()
    await ours.take(1)
    await new Promise((r) => setTimeout(r, 300))
    expect(theirs.events).toEqual([])
    // Naming another team's sandbox shows nothing either.
    const named = await openStream(api, `?sandboxId=${id}&after=0-0`, { 'x-api-key': key })
    await new Promise((r) => setTimeout(r, 200))
    expect(named.events).toEqual([])
    for (const s of [theirs, ours, named]) await s.close()
  })

  it('refuses bad requests with {code, message}', async () => {
    const api = await harness()
    for (const [path, headers, status] of [
      ['/events?kind=exploded', {}, 400],
      ['/events?kind=', {}, 400],
      ['/events?after=12', {}, 400],
      ['/events', { 'last-event-id': 'x-1' }, 400],
      ['/events?since=1', {}, 400],
      ['/events?sandboxId=../etc', {}, 400],
    ] as const) {
      const res = await api.request('GET', path, { headers })
      expect([path, res.status]).toEqual([path, status])
      expect(res.body).toMatchObject({ code: status, message: expect.any(String) })
    }
    const anonymous = await api.request('GET', '/events', { key: null })
    expect(anonymous.status).toBe(401)
  })
})
