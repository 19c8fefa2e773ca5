// Unknown sandbox ids of any shape are "not found" on every route, as E2B
// answers them: the SDK turns 404 into `false` (kill) or SandboxNotFoundError,
// never into a bad-request error. Absurd ids (huge, path characters) get the
// same 404 body without a lookup. And a network update needs a body.
import { NotFoundError, Sandbox, SandboxNotFoundError } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, detail, expectApiError } from '../helpers/api-client.js'
import { proxyRequest } from '../helpers/proxy-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
let live: Sandbox

beforeAll(async () => {
  live = await Sandbox.create({ ...warren().sdk, timeoutMs: 120_000 })
})
afterAll(async () => {
  if (live) await Sandbox.kill(live.sandboxId, warren().sdk).catch(() => {})
})

const IDS = [
  'some-id',
  'x',
  'NOT_A_WARREN_ID',
  'zzzzzzzzzzzzzzzzzzz0',
  'a'.repeat(21),
  'k'.repeat(10_000),
  '../../etc/passwd',
  'a/b',
  'a.b',
  '%00',
]

describe('unknown sandbox ids through the SDK', () => {
  it.each(IDS.map((id) => [id.length > 40 ? `${id.slice(0, 12)}… (${id.length})` : id, id]))(
    '%s is not found everywhere',
    async (_name, id) => {
      const o = warren().sdk
      expect(await Sandbox.kill(id, o)).toBe(false)
      await expect(Sandbox.connect(id, o)).rejects.toBeInstanceOf(SandboxNotFoundError)
      await expect(Sandbox.getInfo(id, o)).rejects.toBeInstanceOf(SandboxNotFoundError)
      await expect(Sandbox.setTimeout(id, 30_000, o)).rejects.toBeInstanceOf(SandboxNotFoundError)
      await expect(Sandbox.getMetrics(id, o)).rejects.toBeInstanceOf(SandboxNotFoundError)
      await expect(Sandbox.pause(id, o)).rejects.toBeInstanceOf(SandboxNotFoundError)
      await expect(Sandbox.updateNetwork(id, {}, o)).rejects.toBeInstanceOf(NotFoundError)
    },
  )

  it('raw routes answer 404 {code, message} for every shape, v1 and v2', async () => {
    const w = warren()
    for (const raw of IDS) {
      const id = encodeURIComponent(raw)
      for (const [method, path, json] of [
        ['GET', `/sandboxes/${id}`],
        ['DELETE', `/sandboxes/${id}`],
        ['POST', `/sandboxes/${id}/timeout`, { timeout: 5 }],
        ['POST', `/sandboxes/${id}/refreshes`, {}],
        ['POST', `/sandboxes/${id}/connect`, {}],
        ['POST', `/v2/sandboxes/${id}/connect`, {}],
        ['POST', `/sandboxes/${id}/pause`, {}],
        ['POST', `/sandboxes/${id}/resume`, {}],
        ['PUT', `/sandboxes/${id}/network`, {}],
        ['GET', `/sandboxes/${id}/metrics`],
        ['GET', `/sandboxes/${id}/logs`],
        ['GET', `/v2/sandboxes/${id}/logs`],
      ] as const) {
        const res = await api(w, method, path, json ? { json } : {})
        expectApiError(res, 404)
        expect(res.text.length, `${method} ${path}`).toBeLessThan(300)
      }
    }
    // Listing metrics of many ids: the unknown ones are simply absent.
    const ids = [live.sandboxId, ...IDS.slice(0, 5)].map(encodeURIComponent).join(',')
    const many = await api(w, 'GET', `/sandboxes/metrics?sandbox_ids=${ids}`)
    expect(many.status, many.text).toBe(200)
    expect(Object.keys((many.body as { sandboxes: object }).sandboxes)).toEqual([live.sandboxId])
  })

  it('envd through the proxy: an unknown id of another shape is a missing sandbox (isRunning false)', async () => {
    const res = await proxyRequest(warren(), {
      path: '/health',
      headers: { 'e2b-sandbox-id': 'some-id' },
    })
    expect(res.status, res.text).toBe(502)
    expect(res.json).toMatchObject({ sandboxId: 'some-id', code: 502 })
    const ghost = new Sandbox({ ...warren().sdk, sandboxId: 'some-id', envdVersion: '0.6.4' })
    expect(await ghost.isRunning()).toBe(false)
  })
})

describe('PUT /sandboxes/{id}/network', () => {
  it('with no body is a 400 and changes nothing; an explicit {} clears the rules', async () => {
    const w = warren()
    const id = live.sandboxId
    await live.updateNetwork({ denyOut: ['198.51.100.0/24'] })
    expect((await detail(w, id)).network).toEqual({ denyOut: ['198.51.100.0/24'] })

    const empty = await fetch(`${w.apiUrl}/sandboxes/${id}/network`, {
      method: 'PUT',
      headers: { 'x-api-key': w.apiKey },
    })
    expect(empty.status).toBe(400)
    expect(await empty.json()).toEqual({ code: 400, message: expect.stringMatching(/body/) })
    expect((await detail(w, id)).network).toEqual({ denyOut: ['198.51.100.0/24'] })

    expect((await api(w, 'PUT', `/sandboxes/${id}/network`, { json: {} })).status).toBe(204)
    expect((await detail(w, id)).network).toEqual({})
  })
})
