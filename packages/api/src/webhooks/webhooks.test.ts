import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createApiKey, ensureTeam } from '../store/teams.js'
import {
  type InProcessApi,
  type InProcessOptions,
  startInProcessApi,
} from '../testing/in-process.js'
import { WebhookDeliverer } from './deliverer.js'

interface Hit {
  at: number
  headers: IncomingHttpHeaders
  body: string
  event: { id: string; kind: string; sandboxId: string; data: Record<string, unknown> }
  status: number
}

/**
 * A webhook receiver on loopback: records every request and answers with
 * what `answer` says (200 unless told otherwise).
 */
async function receiver(answer: (event: Hit['event'], nth: number) => number = () => 200) {
  const hits: Hit[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      const event = JSON.parse(body) as Hit['event']
      const nth = hits.filter((h) => h.event.id === event.id).length
      const status = answer(event, nth)
      hits.push({ at: Date.now(), headers: req.headers, body, event, status })
      res.writeHead(status).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/hook`,
    hits,
    delivered: () => hits.filter((h) => h.status === 200),
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

const closing: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of closing.splice(0).reverse()) await c()
})

async function harness(webhooks: NonNullable<InProcessOptions['webhooks']> = {}) {
  const api = await startInProcessApi({ webhooks: { allowPrivate: true, ...webhooks } })
  closing.push(() => api.close())
  return api
}

async function listening(answer?: Parameters<typeof receiver>[0]) {
  const r = await receiver(answer)
  closing.push(r.close)
  return r
}

async function register(api: InProcessApi, json: Record<string, unknown>) {
  const res = await api.request('POST', '/webhooks', { json })
  expect(res.status, res.text).toBe(201)
  return res.body as { id: string; secret: string; url: string; kinds: string[] }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** A webhook's deliveries once none is pending or under way any more. */
async function settledDeliveries(api: InProcessApi, hookId: string): Promise<unknown[]> {
  let rows: Array<{ state: string }> = []
  await until('every delivery is settled', async () => {
    rows = (await api.request('GET', `/webhooks/${hookId}/deliveries`)).body as typeof rows
    return rows.every((d) => d.state === 'delivered' || d.state === 'failed')
  })
  return rows
}

/** A receiver's own check of the signature, as its documentation tells one to. */
function verify(secret: string, header: string | string[] | undefined, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(header))
  if (!m) return false
  const want = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest()
  return timingSafeEqual(want, Buffer.from(m[2]!, 'hex'))
}

describe('webhook registration', () => {
  it('refuses unsupported fields, unknown kinds, weak secrets and targets inside the network', async () => {
    const api = await startInProcessApi()
    closing.push(() => api.close())
    for (const [json, says] of [
      [{ url: 'http://127.0.0.1:9/x' }, 'loopback address (WARREN_WEBHOOK_ALLOW_PRIVATE'],
      [{ url: 'http://localhost:9/x' }, 'WARREN_WEBHOOK_ALLOW_PRIVATE'],
      [{ url: 'http://10.1.2.3/x' }, 'private address'],
      [{ url: 'http://[::1]/x' }, 'loopback address'],
      [{ url: 'http://169.254.169.254/latest' }, 'linkLocal address'],
      [{ url: 'http://[::ffff:169.254.169.254]/' }, 'linkLocal address'],
      [{ url: 'http://0.0.0.0/' }, 'unspecified address'],
      [{ url: 'ftp://example.com/' }, 'only http and https'],
      [{ url: 'https://user:pw@example.com/' }, 'credentials'],
      [{ url: 'not a url' }, 'not a URL'],
      [{ url: 'https://example.com/', secret: 'short' }, 'secret'],
      [{ url: 'https://example.com/', kinds: ['exploded'] }, 'kinds'],
      [{ url: 'https://example.com/', enabled: true }, "unsupported field 'enabled'"],
    ] as const) {
      const res = await api.request('POST', '/webhooks', { json })
      expect([json, res.status]).toEqual([json, 400])
      expect((res.body as { message: string }).message).toContain(says)
    }
    expect((await api.request('GET', '/webhooks')).body).toEqual([])
  })

  it('registers, lists without the secret, keeps teams apart and deletes', async () => {
    const api = await harness()
    const made = await register(api, { url: 'http://127.0.0.1:9/hook', kinds: ['killed'] })
    expect(made.secret).toMatch(/^whsec_[0-9a-f]{48}$/)
    const given = await register(api, {
      url: 'https://example.com/h',
      secret: 'a-secret-of-mine-1234',
    })
    expect(given.secret).toBe('a-secret-of-mine-1234')
    expect(given.kinds).toHaveLength(6)
    const list = await api.request('GET', '/webhooks')
    expect(list.body).toHaveLength(2)
    expect(list.text).not.toContain('whsec_')
    expect(list.text).not.toContain('a-secret-of-mine')
    const one = await api.request('GET', `/webhooks/${made.id}`)
    expect(one.body).toMatchObject({ id: made.id, kinds: ['killed'] })
    expect(one.body).not.toHaveProperty('secret')

    const other = await ensureTeam(api.db, 'other', { maxConcurrent: 1, maxLifetimeS: 60 })
    const { key } = await createApiKey(api.db, other.id, 'other')
    expect((await api.request('GET', `/webhooks/${made.id}`, { key })).status).toBe(404)
    expect((await api.request('DELETE', `/webhooks/${made.id}`, { key })).status).toBe(404)
    expect((await api.request('GET', '/webhooks', { key })).body).toEqual([])

    expect((await api.request('DELETE', `/webhooks/${made.id}`)).status).toBe(204)
    expect((await api.request('GET', `/webhooks/${made.id}`)).status).toBe(404)
    expect((await api.request('DELETE', `/webhooks/${made.id}`)).status).toBe(404)
  })
})

describe('webhook delivery', () => {
  it('signs each delivery with HMAC-SHA256 over the timestamp and body', async () => {
    const api = await harness()
    const r = await listening()
    const hook = await register(api, { url: r.url })
    const id = await api.create({ templateID: 'base', metadata: { who: 'me' } })
    await until('the create is delivered', () => r.hits.length >= 1)
    const [hit] = r.hits
    expect(hit!.event).toMatchObject({ kind: 'created', sandboxId: id, metadata: { who: 'me' } })
    expect(verify(hook.secret, hit!.headers['warren-signature'], hit!.body)).toBe(true)
    // Signed with another secret, or over another body, it would not verify.
    expect(verify('another-secret-0000', hit!.headers['warren-signature'], hit!.body)).toBe(false)
    expect(verify(hook.secret, hit!.headers['warren-signature'], `${hit!.body} `)).toBe(false)
    const t = Number(/t=(\d+)/.exec(String(hit!.headers['warren-signature']))![1])
    expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(60)
    expect(hit!.headers).toMatchObject({
      'content-type': 'application/json',
      'warren-webhook-id': hook.id,
      'warren-event-id': hit!.event.id,
    })
    await until('it is recorded delivered', async () => {
      const d = await api.request('GET', `/webhooks/${hook.id}/deliveries`)
      return (d.body as Array<{ state: string }>)[0]?.state === 'delivered'
    })
  })

  it('retries with growing delays after the receiver fails twice, then delivers once', async () => {
    const retryBaseMs = 200
    const api = await harness({ retryBaseMs })
    const r = await listening((_, nth) => (nth < 2 ? 500 : 200))
    const hook = await register(api, { url: r.url, kinds: ['created'] })
    await api.create()
    await until('the third attempt is answered 200', () => r.delivered().length === 1)
    expect(r.hits.map((h) => h.status)).toEqual([500, 500, 200])
    const [a, b, c] = r.hits.map((h) => h.at) as [number, number, number]
    // Exponential backoff: at least the base, then at least twice the base.
    expect(b - a).toBeGreaterThanOrEqual(retryBaseMs)
    expect(c - b).toBeGreaterThanOrEqual(2 * retryBaseMs)
    // The same event each time (one id to deduplicate by).
    expect(new Set(r.hits.map((h) => h.event.id)).size).toBe(1)
    // The receiver answers before the deliverer records the answer.
    const deliveries = await settledDeliveries(api, hook.id)
    expect(deliveries).toMatchObject([{ state: 'delivered', attempts: 3, lastStatus: 200 }])
    await new Promise((res) => setTimeout(res, 300))
    expect(r.hits).toHaveLength(3)
  })

  it("delivers each sandbox's events in order, one after the other, while others go on", async () => {
    const api = await harness({ retryBaseMs: 150 })
    let blockA = true
    let a = ''
    // Sandbox A's first delivery fails until B's events were all delivered.
    const r = await listening((e) => (e.sandboxId === a && blockA ? 503 : 200))
    await register(api, { url: r.url })
    a = await api.create()
    await api.request('POST', `/sandboxes/${a}/timeout`, { json: { timeout: 900 } })
    await api.request('POST', `/sandboxes/${a}/pause`)
    await api.request('POST', `/sandboxes/${a}/connect`, { json: { timeout: 60 } })
    await api.request('DELETE', `/sandboxes/${a}`)
    const b = await api.create()
    await api.request('DELETE', `/sandboxes/${b}`)
    await until("B's events are delivered", () => r.delivered().length === 2)
    expect(r.delivered().map((h) => [h.event.sandboxId, h.event.kind])).toEqual([
      [b, 'created'],
      [b, 'killed'],
    ])
    // Nothing of A's past its failing first event went out meanwhile.
    expect(r.hits.filter((h) => h.event.sandboxId === a).map((h) => h.event.kind)).toEqual(
      r.hits.filter((h) => h.event.sandboxId === a).map(() => 'created'),
    )
    blockA = false
    await until("A's events are delivered", () => r.delivered().length === 7)
    const ofA = r.delivered().filter((h) => h.event.sandboxId === a)
    expect(ofA.map((h) => h.event.kind)).toEqual([
      'created',
      'timeout_changed',
      'paused',
      'resumed',
      'killed',
    ])
    expect(ofA.at(-1)!.event.data).toEqual({ reason: 'request' })
  })

  it('keeps deliveries in the store across a restart and delivers each once with two replicas', async () => {
    const api = await harness()
    // The harness's deliverer stands for an API that went down.
    await api.deliverer!.stop()
    const r = await listening()
    await register(api, { url: r.url, kinds: ['created', 'killed'] })
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push(await api.create())
    for (const id of ids) await api.request('DELETE', `/sandboxes/${id}`)
    await new Promise((res) => setTimeout(res, 200))
    expect(r.hits).toEqual([])
    // Two replicas come up on the store: each delivery is claimed by one of them.
    const log = pino({ level: 'silent' })
    const replicas = ['replica-a', 'replica-b'].map((name) => {
      const d = new WebhookDeliverer(
        api.db,
        { concurrency: 4, maxAttempts: 5, retryBaseMs: 100, allowPrivate: true, pollMs: 20 },
        () => name,
        log,
      )
      d.start()
      closing.push(() => d.stop())
      return d
    })
    await until('all ten are delivered', () => r.hits.length >= 10)
    await new Promise((res) => setTimeout(res, 300))
    expect(r.hits).toHaveLength(10)
    expect(new Set(r.hits.map((h) => h.headers['warren-delivery-id'])).size).toBe(10)
    for (const id of ids)
      expect(r.hits.filter((h) => h.event.sandboxId === id).map((h) => h.event.kind)).toEqual([
        'created',
        'killed',
      ])
    expect(replicas).toHaveLength(2)
  })

  it('gives a delivery up after its attempts and goes on with the next one', async () => {
    const api = await harness({ retryBaseMs: 20, maxAttempts: 3 })
    const r = await listening((e) => (e.kind === 'created' ? 500 : 200))
    const hook = await register(api, { url: r.url })
    const id = await api.create()
    await api.request('DELETE', `/sandboxes/${id}`)
    await until('the kill is delivered', () => r.delivered().length === 1)
    expect(r.hits.map((h) => [h.event.kind, h.status])).toEqual([
      ['created', 500],
      ['created', 500],
      ['created', 500],
      ['killed', 200],
    ])
    const deliveries = await settledDeliveries(api, hook.id)
    expect(deliveries).toMatchObject([
      { state: 'delivered', attempts: 1 },
      { state: 'failed', attempts: 3, lastStatus: 500 },
    ])
  })

  it('does not deliver to a loopback target unless the operator allows it', async () => {
    const r = await listening()
    const api = await harness()
    await register(api, { url: r.url })
    // The same webhook, but the API is now not allowed to reach private targets.
    const log = pino({ level: 'silent' })
    await api.deliverer!.stop()
    const strict = new WebhookDeliverer(
      api.db,
      { concurrency: 1, maxAttempts: 2, retryBaseMs: 20, allowPrivate: false, pollMs: 20 },
      () => 'strict',
      log,
    )
    strict.start()
    closing.push(() => strict.stop())
    const id = await api.create()
    await until('the delivery failed', async () => {
      const hooks = (await api.request('GET', '/webhooks')).body as Array<{ id: string }>
      const d = await api.request('GET', `/webhooks/${hooks[0]!.id}/deliveries`)
      return (d.body as Array<{ state: string }>)[0]?.state === 'failed'
    })
    const hooks = (await api.request('GET', '/webhooks')).body as Array<{ id: string }>
    const [d] = (await api.request('GET', `/webhooks/${hooks[0]!.id}/deliveries`)).body as Array<{
      lastError: string
    }>
    expect(d!.lastError).toContain('loopback')
    expect(r.hits).toEqual([])
    expect(id).toBeTruthy()
  })
})
