// set-timeout, refresh and kill fired together (two of each) at sandboxes
// around their endAt, while the expiry fires too: each sandbox ends in one
// consistent state, every loser gets a clear 404/409, and nothing leaks.
import { describe, expect, it } from 'vitest'
import {
  type ApiResponse,
  api,
  eventually,
  expectApiError,
  listedEndAts,
  sleep,
} from '../helpers/api-client.js'
import { nodeSandboxIds } from '../helpers/orchestrator-client.js'
import { proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const N = 10
/** What a winning call sets endAt to, from its own "now". */
const EXTENDS_S = { timeout: 30, refresh: 45 } as const
type Kind = 'timeout' | 'refresh' | 'kill'

interface Call {
  kind: Kind
  status: number
  res: ApiResponse
  sent: number
  received: number
}

interface Outcome {
  id: string
  endAt: number
  offset: number
  calls: Call[]
}

/**
 * Per sandbox, the order and spacing (ms) in which its calls leave. One plan
 * has no kill: extensions racing only the expiry, so that some sandboxes
 * survive and must then expire at the endAt the winner left.
 */
// biome-ignore format: one plan per line
const PLANS: Array<Array<[Kind, number]>> = [
  [['kill', 0], ['timeout', 0], ['refresh', 0], ['kill', 0], ['timeout', 0], ['refresh', 0]],
  [['timeout', 0], ['refresh', 0], ['timeout', 0], ['refresh', 0]],
  [['timeout', 0], ['timeout', 0], ['refresh', 0], ['refresh', 0], ['kill', 2], ['kill', 2]],
  [['refresh', 0], ['kill', 0], ['timeout', 1], ['kill', 1], ['refresh', 3], ['timeout', 3]],
  [['timeout', 0], ['kill', 0], ['timeout', 0], ['kill', 0], ['refresh', 5], ['refresh', 5]],
]

const send = (id: string, kind: Kind) =>
  kind === 'kill'
    ? api(warren(), 'DELETE', `/sandboxes/${id}`)
    : kind === 'timeout'
      ? api(warren(), 'POST', `/sandboxes/${id}/timeout`, { json: { timeout: EXTENDS_S.timeout } })
      : api(warren(), 'POST', `/sandboxes/${id}/refreshes`, {
          json: { duration: EXTENDS_S.refresh },
        })

async function timed(id: string, kind: Kind, delayMs: number): Promise<Call> {
  // The plan spaces the calls in time on purpose.
  if (delayMs) await sleep(delayMs)
  const sent = Date.now()
  const res = await send(id, kind)
  return { kind, status: res.status, res, sent, received: Date.now() }
}

/** Creates a sandbox with a 2–3 s timeout and fires its calls `offset` ms from its endAt. */
async function raceOne(i: number): Promise<Outcome> {
  const created = await api(warren(), 'POST', '/v2/sandboxes', {
    json: { templateID: 'base', timeout: 2 + (i % 2), metadata: { suite: 'race' } },
  })
  expect(created.status, created.text).toBe(201)
  const id = (created.body as { sandboxID: string }).sandboxID
  const info = await api(warren(), 'GET', `/sandboxes/${id}`)
  const endAt = Date.parse((info.body as { endAt: string }).endAt)
  // From 200 ms before the deadline to 25 ms after it: the wait places the
  // calls around the deadline, which is what races.
  const offset = -200 + i * 25
  await sleep(endAt + offset - Date.now())
  const calls = await Promise.all(
    PLANS[i % PLANS.length]!.map(([kind, delay]) => timed(id, kind, delay)),
  )
  return { id, endAt, offset, calls }
}

const of = (o: Outcome, kind: Kind) => o.calls.filter((c) => c.kind === kind)
const statuses = (o: Outcome, kind: Kind) => of(o, kind).map((c) => c.status)

function describeOutcome(o: Outcome): string {
  const calls = o.calls.map(
    (c) => `${c.kind} ${c.status}@${c.sent - o.endAt}..${c.received - o.endAt}`,
  )
  return `${o.id} at ${o.offset}ms: ${calls.join(', ')}`
}

async function envdHealth(id: string): Promise<number> {
  return (await proxyRequest(warren(), { headers: { 'e2b-sandbox-id': id }, path: '/health' }))
    .status
}

/** Alive: no kill won, and endAt is what one winning extension set while in flight. */
function checkAlive(o: Outcome, endAt: number, why: string) {
  for (const s of statuses(o, 'kill')) expect(s, why).toBe(409)
  const winners = o.calls.filter((c) => c.kind !== 'kill' && c.status === 204)
  expect(winners.length, why).toBeGreaterThan(0)
  const setBy = winners.filter((c) => {
    const s = EXTENDS_S[c.kind as 'timeout' | 'refresh'] * 1000
    return endAt >= c.sent + s && endAt <= c.received + s
  })
  expect(setBy.length, `${why}\nendAt is ${endAt - o.endAt}ms past the old one`).toBeGreaterThan(0)
}

/**
 * Killed: by exactly one kill request, or by the expiry. An extension that
 * won would have moved endAt beyond the expiry, so then every call lost.
 */
function killReason(o: Outcome, why: string): 'request' | 'timeout' {
  const won = statuses(o, 'kill').filter((s) => s === 204).length
  expect(won, why).toBeLessThanOrEqual(1)
  if (won === 1) return 'request'
  for (const c of o.calls) expect([404, 409], why).toContain(c.status)
  return 'timeout'
}

describe('set-timeout, refresh and kill racing the expiry', () => {
  it('end in one consistent state per sandbox, with clear losers and no leaks', async () => {
    const outcomes = await Promise.all(Array.from({ length: N }, (_, i) => raceOne(i)))
    const log = outcomes.map(describeOutcome).join('\n')

    // Every answer is a success or a clear 404/409, never a 500.
    for (const c of outcomes.flatMap((o) => o.calls)) {
      expect([204, 404, 409], log).toContain(c.status)
      if (c.status !== 204) expectApiError(c.res, c.status)
    }

    const alive: Outcome[] = []
    const listed = await listedEndAts(warren())
    for (const o of outcomes) {
      const res = await api(warren(), 'GET', `/sandboxes/${o.id}`)
      const why = `${describeOutcome(o)}\nnow ${res.status} ${res.text}`
      if (res.status === 200) {
        alive.push(o)
        const endAt = Date.parse((res.body as { endAt: string }).endAt)
        checkAlive(o, endAt, why)
        expect(listed.get(o.id), why).toBe(new Date(endAt).toISOString())
        expect(await envdHealth(o.id), why).toBe(204)
      } else {
        expectApiError(res, 404)
        expect(listed.has(o.id), why).toBe(false)
        const reason = killReason(o, why)
        await eventually(`${o.id} refused by the proxy (${reason})`, async () => {
          const r = await proxyRequest(warren(), { host: sandboxHost(warren(), o.id, 8080) })
          return r.status === 410 && r.headers['x-warren-kill-reason'] === reason
        })
        expect(await envdHealth(o.id), why).toBe(502)
      }
    }
    console.info(`race outcomes (${alive.length} of ${N} alive):\n${log}`)

    // The node runs exactly what the API says is running.
    const running = async () => [...(await listedEndAts(warren())).keys()].sort()
    await eventually('node and API agree', async () => {
      return JSON.stringify(await nodeSandboxIds(warren())) === JSON.stringify(await running())
    })
    expect(await running()).toEqual(alive.map((o) => o.id).sort())

    // The survivors still expire at the endAt the winner left them.
    const deadlines = alive
      .map((o) => ({ id: o.id, endAt: Date.parse(listed.get(o.id)!) }))
      .sort((a, b) => a.endAt - b.endAt)
    for (const { id, endAt } of deadlines) {
      if (endAt - Date.now() > 400) {
        // Shortly before its endAt it must still be there: the wait is the test.
        await sleep(endAt - 300 - Date.now())
        expect((await api(warren(), 'GET', `/sandboxes/${id}`)).status, id).toBe(200)
      }
      await eventually(
        `${id} expires within 1 s of its endAt`,
        async () => (await api(warren(), 'GET', `/sandboxes/${id}`)).status === 404,
        endAt + 1000 - Date.now(),
        25,
      )
    }
    await eventually('the node is empty', async () => (await nodeSandboxIds(warren())).length === 0)
    expect(await running()).toEqual([])
  })
})
