// API keys and body size, in process: a missing, malformed, unknown or
// revoked key is 401 on every route; another team's sandbox is a plain 404;
// a body over 4 MiB is 413 before anything reads it. None changes anything.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createApiKey, ensureTeam, revokeApiKey } from '../store/teams.js'
import { expectApiError, stateOf } from '../testing/assertions.js'
import { type InProcessApi, type RequestOptions, startInProcessApi } from '../testing/in-process.js'

const MAX_BODY = 4 * 2 ** 20
let api: InProcessApi
let id: string
let revoked: string
let otherTeamKey: string

beforeAll(async () => {
  api = await startInProcessApi()
  id = await api.create()
  const k = await createApiKey(api.db, api.team.id, 'revoked')
  await revokeApiKey(api.db, k.info.id)
  revoked = k.key
  const other = await ensureTeam(api.db, 'other', { maxConcurrent: 5, maxLifetimeS: 3600 })
  otherTeamKey = (await createApiKey(api.db, other.id, 'other')).key
})
afterAll(() => api.close())
beforeEach(() => {
  api.node.calls.length = 0
})

/** Every authenticated route, with a body where one is taken. */
const routes = (): Array<[string, string, unknown?]> => [
  ['POST', '/sandboxes', { templateID: 'base' }],
  ['POST', '/v2/sandboxes', { templateID: 'base' }],
  ['GET', '/sandboxes'],
  ['GET', '/v2/sandboxes'],
  ['GET', `/sandboxes/${id}`],
  ['DELETE', `/sandboxes/${id}`],
  ['POST', `/sandboxes/${id}/timeout`, { timeout: 5 }],
  ['POST', `/sandboxes/${id}/refreshes`, { duration: 60 }],
  ['POST', `/sandboxes/${id}/connect`, { timeout: 600 }],
  ['POST', `/v2/sandboxes/${id}/connect`, { timeout: 600 }],
  ['POST', `/sandboxes/${id}/pause`, {}],
  ['POST', `/sandboxes/${id}/resume`, {}],
  ['PUT', `/sandboxes/${id}/network`, { denyOut: ['10.0.0.0/8'] }],
  ['GET', `/sandboxes/${id}/metrics`],
  ['GET', `/sandboxes/metrics?sandbox_ids=${id}`],
  ['GET', `/sandboxes/${id}/logs`],
  ['GET', `/v2/sandboxes/${id}/logs`],
  ['GET', '/templates'],
]

async function expectNothingChanged(run: () => Promise<void>): Promise<void> {
  const before = await stateOf(api)
  await run()
  expect(await stateOf(api)).toEqual(before)
  expect(api.node.callsOf()).toEqual([])
}

describe('API keys', () => {
  it.each<[string, () => string | null]>([
    ['no key', () => null],
    ['a malformed key', () => 'not-a-key'],
    ['an unknown key', () => `e2b_${'0'.repeat(40)}`],
    ['the key in the wrong case', () => api.apiKey.toUpperCase().replace('E2B_', 'e2b_')],
    ['a revoked key', () => revoked],
  ])('%s: 401 on every route', async (_name, key) => {
    await expectNothingChanged(async () => {
      for (const [method, path, json] of routes()) {
        const res = await api.request(method, path, { key: key(), json })
        expectApiError(res, 401, /key/i)
      }
    })
  })

  it("another team's sandbox is a plain 404 on every route, and is not listed", async () => {
    await expectNothingChanged(async () => {
      for (const [method, path, json] of routes()) {
        if (!path.includes(id)) continue
        const res = await api.request(method, path, { key: otherTeamKey, json })
        // The batch metrics route leaves unknown ids out rather than failing.
        if (path.startsWith('/sandboxes/metrics')) expect(res.body).toEqual({ sandboxes: {} })
        else expectApiError(res, 404, /not found/)
      }
      const listed = await api.request('GET', '/v2/sandboxes', { key: otherTeamKey })
      expect(listed.body).toEqual([])
    })
  })

  it('health and the OpenAPI document need no key', async () => {
    expect((await api.request('GET', '/health', { key: null })).status).toBe(200)
    expect((await api.request('GET', '/openapi.json', { key: null })).status).toBe(200)
  })
})

describe('body size', () => {
  const withBody = () => routes().filter(([, , json]) => json !== undefined)
  /** A JSON body of exactly `size` bytes (a padded metadata value). */
  const sized = (size: number): RequestOptions => {
    const shell = JSON.stringify({ templateID: 'base', metadata: { pad: '' } })
    return { raw: shell.replace('"pad":""', `"pad":"${'x'.repeat(size - shell.length)}"`) }
  }

  it.each([
    ['with the key', undefined],
    ['without a key', null],
  ])('over 4 MiB is 413 on every route that takes a body, %s', async (_name, key) => {
    await expectNothingChanged(async () => {
      for (const [method, path] of withBody()) {
        const res = await api.request(method, path, { ...sized(MAX_BODY + 1), key })
        expectApiError(res, 413, /body/)
      }
    })
  })

  it('exactly 4 MiB is read (and then judged on its content)', async () => {
    expect(sized(MAX_BODY).raw).toHaveLength(MAX_BODY)
    await expectNothingChanged(async () => {
      const res = await api.request('POST', '/v2/sandboxes', sized(MAX_BODY))
      expectApiError(res, 400, /metadata/)
    })
  })
})
