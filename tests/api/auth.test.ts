// API keys: missing, malformed, unknown and revoked keys are 401 on every
// route; another team's sandbox is a plain 404 and stays untouched.
import { createApiKey, ensureTeam, openDatabase } from '@warren/api'
import { AuthenticationError, Sandbox, SandboxNotFoundError } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, detail, expectApiError, listedEndAts } from '../helpers/api-client.js'
import { runCli, runCliJson } from '../helpers/cli.js'
import { nodeSandboxIds } from '../helpers/orchestrator-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const made: string[] = []
let id: string

beforeAll(async () => {
  const sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 300_000 })
  id = sbx.sandboxId
  made.push(id)
})

afterAll(async () => {
  for (const s of made) await Sandbox.kill(s, warren().sdk).catch(() => {})
})

/** Every authenticated route, with a body where one is needed. */
const routes = (sid: string): Array<[string, string, unknown?]> => [
  ['POST', '/sandboxes', { templateID: 'base' }],
  ['POST', '/v2/sandboxes', { templateID: 'base' }],
  ['GET', '/sandboxes'],
  ['GET', '/v2/sandboxes'],
  ['GET', `/sandboxes/${sid}`],
  ['DELETE', `/sandboxes/${sid}`],
  ['POST', `/sandboxes/${sid}/timeout`, { timeout: 5 }],
  ['POST', `/sandboxes/${sid}/refreshes`, { duration: 60 }],
  ['POST', `/sandboxes/${sid}/connect`, { timeout: 600 }],
  ['POST', `/v2/sandboxes/${sid}/connect`, { timeout: 600 }],
  ['GET', `/sandboxes/${sid}/metrics`],
  ['GET', `/sandboxes/metrics?sandbox_ids=${sid}`],
  ['GET', `/sandboxes/${sid}/logs`],
  ['GET', `/v2/sandboxes/${sid}/logs`],
  ['GET', '/templates'],
]

async function expectUnchanged(endAt: string) {
  expect((await detail(warren(), id)).endAt).toBe(endAt)
  expect([...(await listedEndAts(warren())).keys()]).toEqual([id])
  expect(await nodeSandboxIds(warren())).toEqual([id])
}

describe('API keys', () => {
  it.each([
    ['no key', null],
    ['a malformed key', 'not-a-key'],
    ['an unknown key', `e2b_${'0'.repeat(40)}`],
    ['the key in the wrong case', () => warren().apiKey.toUpperCase().replace('E2B_', 'e2b_')],
  ])('%s: 401 on every route, nothing changed', async (_name, key) => {
    const endAt = (await detail(warren(), id)).endAt
    const k = typeof key === 'function' ? key() : key
    for (const [method, path, json] of routes(id)) {
      const res = await api(warren(), method, path, { key: k, ...(json ? { json } : {}) })
      expectApiError(res, 401, /key/i)
    }
    await expectUnchanged(endAt)
  })

  it('a key created with `warren keys create` works until it is revoked', async () => {
    const created = (await runCliJson(warren(), [
      'keys',
      'create',
      '--name',
      'temp',
      '--json',
    ])) as {
      id: string
      key: string
      name: string
    }
    expect(created).toMatchObject({
      name: 'temp',
      key: expect.stringMatching(/^e2b_[0-9a-f]{40}$/),
    })
    expect((await api(warren(), 'GET', '/v2/sandboxes', { key: created.key })).status).toBe(200)
    // It belongs to the same (default) team.
    const info = await Sandbox.getInfo(id, { ...warren().sdk, apiKey: created.key })
    expect(info.sandboxId).toBe(id)

    const revoked = await runCli(warren(), ['keys', 'revoke', created.id])
    expect(revoked.code, revoked.stderr).toBe(0)
    const listed = (await runCliJson(warren(), ['keys', 'list', '--json'])) as Array<{
      id: string
      revoked: string
    }>
    expect(listed.find((k) => k.id === created.id)?.revoked).not.toBe('')

    const endAt = (await detail(warren(), id)).endAt
    for (const [method, path, json] of routes(id)) {
      const res = await api(warren(), method, path, { key: created.key, ...(json ? { json } : {}) })
      expectApiError(res, 401, /key/i)
    }
    await expect(
      Sandbox.getInfo(id, { ...warren().sdk, apiKey: created.key }),
    ).rejects.toBeInstanceOf(AuthenticationError)
    await expectUnchanged(endAt)
    // Revoking twice is an error, not a silent success.
    expect((await runCli(warren(), ['keys', 'revoke', created.id])).code).toBe(1)
  })
})

describe("another team's sandbox", () => {
  let otherKey: string

  beforeAll(async () => {
    const db = await openDatabase(warren().databaseUrl)
    try {
      const team = await ensureTeam(db, 'other-team', { maxConcurrent: 5, maxLifetimeS: 3600 })
      otherKey = (await createApiKey(db, team.id, 'other')).key
    } finally {
      await db.destroy()
    }
  })

  it('is a plain 404 on every route, and is left exactly as it was', async () => {
    const endAt = (await detail(warren(), id)).endAt
    for (const [method, path, json] of routes(id)) {
      if (!path.includes(id)) continue
      const res = await api(warren(), method, path, { key: otherKey, ...(json ? { json } : {}) })
      if (path.startsWith('/sandboxes/metrics')) {
        // The batch form leaves out what the caller cannot see.
        expect(res.status, res.text).toBe(200)
        expect(res.body).toEqual({ sandboxes: {} })
      } else {
        expectApiError(res, 404, /not found/)
      }
    }
    expect((await listedEndAts(warren(), otherKey)).size).toBe(0)
    const v1 = await api(warren(), 'GET', '/sandboxes', { key: otherKey })
    expect(v1.body).toEqual([])
    const sdk = { ...warren().sdk, apiKey: otherKey }
    await expect(Sandbox.getInfo(id, sdk)).rejects.toBeInstanceOf(SandboxNotFoundError)
    expect(await Sandbox.kill(id, sdk)).toBe(false)
    await expect(Sandbox.connect(id, sdk)).rejects.toBeInstanceOf(SandboxNotFoundError)
    await expectUnchanged(endAt)
    expect(await Sandbox.getInfo(id, warren().sdk)).toMatchObject({ state: 'running' })
  })

  it('each team sees only its own sandboxes', async () => {
    const sdk = { ...warren().sdk, apiKey: otherKey }
    const theirs = await Sandbox.create({ ...sdk, timeoutMs: 60_000 })
    made.push(theirs.sandboxId)
    try {
      expect([...(await listedEndAts(warren(), otherKey)).keys()]).toEqual([theirs.sandboxId])
      expect([...(await listedEndAts(warren())).keys()]).toEqual([id])
      expectApiError(await api(warren(), 'GET', `/sandboxes/${theirs.sandboxId}`), 404)
      expect(await Sandbox.kill(theirs.sandboxId, warren().sdk)).toBe(false)
      expect(await theirs.isRunning()).toBe(true)
    } finally {
      expect(await theirs.kill()).toBe(true)
    }
  })
})
