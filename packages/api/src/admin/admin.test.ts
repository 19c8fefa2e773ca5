// The admin API and a team's own keys, in process: a non-admin key is 403 on
// every admin route and changes nothing; an admin key makes teams, sets
// their limits (enforced by the create path from the next create) and makes
// their keys; a team revokes only its own keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApiKey, listApiKeys } from '../store/teams.js'
import { expectApiError } from '../testing/assertions.js'
import { type InProcessApi, startInProcessApi } from '../testing/in-process.js'

let api: InProcessApi
let admin: string

beforeAll(async () => {
  api = await startInProcessApi()
  admin = (await createApiKey(api.db, api.team.id, 'operator', { admin: true })).key
})
afterAll(() => api.close())

const adminRoutes: Array<[string, string, unknown?]> = [
  ['GET', '/admin/teams'],
  ['POST', '/admin/teams', { name: 'sneaky' }],
  ['PATCH', '/admin/teams/default', { maxConcurrent: 1000 }],
  ['GET', '/admin/teams/default/keys'],
  ['POST', '/admin/teams/default/keys', { name: 'x', admin: true }],
  ['GET', '/admin/nodes'],
]

describe('admin routes', () => {
  it.each(adminRoutes)('%s %s: 403 for a team key, 401 without one', async (method, path, json) => {
    const before = {
      teams: await api.db.selectFrom('teams').selectAll().execute(),
      keys: await listApiKeys(api.db),
    }
    expectApiError(await api.request(method, path, json === undefined ? {} : { json }), 403)
    expectApiError(
      await api.request(method, path, { key: null, ...(json === undefined ? {} : { json }) }),
      401,
    )
    expect(await api.db.selectFrom('teams').selectAll().execute()).toEqual(before.teams)
    expect(await listApiKeys(api.db)).toEqual(before.keys)
  })

  it('makes a team, refuses its name twice and unknown fields', async () => {
    const made = await api.request('POST', '/admin/teams', { key: admin, json: { name: 'acme' } })
    expect(made.status).toBe(201)
    expect(made.body).toMatchObject({ name: 'acme', maxConcurrent: 10, maxLifetimeS: 3600 })
    expectApiError(
      await api.request('POST', '/admin/teams', { key: admin, json: { name: 'acme' } }),
      409,
    )
    expectApiError(
      await api.request('POST', '/admin/teams', { key: admin, json: { name: 'b', maxMemory: 1 } }),
      400,
    )
    expectApiError(
      await api.request('POST', '/admin/teams', { key: admin, json: { name: 'Bad Name' } }),
      400,
    )
    const teams = await api.db.selectFrom('teams').select('name').execute()
    expect(teams.map((t) => t.name).sort()).toEqual(['acme', 'default'])
  })

  it("sets a team's limits, which the next create obeys; its keys are its own", async () => {
    const key = await api.request('POST', '/admin/teams/acme/keys', {
      key: admin,
      json: { name: 'ci' },
    })
    expect(key.status).toBe(201)
    const acmeKey = (key.body as { key: string; admin: boolean }).key
    expect((key.body as { admin: boolean }).admin).toBe(false)
    const limits = await api.request('PATCH', '/admin/teams/acme', {
      key: admin,
      json: { maxConcurrent: 1 },
    })
    expect(limits.status).toBe(200)
    expect(limits.body).toMatchObject({ name: 'acme', maxConcurrent: 1, maxLifetimeS: 3600 })
    expectApiError(await api.request('PATCH', '/admin/teams/acme', { key: admin, json: {} }), 400)
    expectApiError(
      await api.request('PATCH', '/admin/teams/nope', { key: admin, json: { maxConcurrent: 2 } }),
      404,
    )

    const first = await api.request('POST', '/v2/sandboxes', {
      key: acmeKey,
      json: { templateID: 'base' },
    })
    expect(first.status).toBe(201)
    expectApiError(
      await api.request('POST', '/v2/sandboxes', { key: acmeKey, json: { templateID: 'base' } }),
      429,
    )

    const list = await api.request('GET', '/admin/teams', { key: admin })
    const acme = (list.body as Array<Record<string, unknown>>).find((t) => t.name === 'acme')
    expect(acme).toMatchObject({
      activeSandboxes: 1,
      activeMemoryMb: expect.any(Number),
      activeKeys: 1,
    })

    // The team's own view of itself.
    const me = await api.request('GET', '/me', { key: acmeKey })
    expect(me.body).toMatchObject({ team: { name: 'acme', maxConcurrent: 1 }, admin: false })
    expectApiError(await api.request('GET', '/admin/teams', { key: acmeKey }), 403)
  })

  it('holds a team to its memory and template limits, and none means none', async () => {
    const made = await api.request('POST', '/admin/teams', {
      key: admin,
      json: { name: 'lean', maxMemoryMb: 1024, maxTemplates: 1 },
    })
    expect(made.status).toBe(201)
    expect(made.body).toMatchObject({ maxMemoryMb: 1024, maxTemplates: 1 })
    expectApiError(
      await api.request('PATCH', '/admin/teams/lean', { key: admin, json: { maxMemoryMb: 10 } }),
      400,
    )
    const key = (
      (await api.request('POST', '/admin/teams/lean/keys', { key: admin, json: { name: 'k' } }))
        .body as { key: string }
    ).key
    const create = () => api.request('POST', '/v2/sandboxes', { key, json: { templateID: 'base' } })

    // 512 MB each (the stand-in node's): two fit in 1024, a third does not.
    const a = await create()
    const b = await create()
    expect([a.status, b.status]).toEqual([201, 201])
    const third = await create()
    expectApiError(third, 429)
    expect((third.body as { message: string }).message).toMatch(/1024 MB/)
    const ids = [a, b].map((r) => (r.body as { sandboxID: string }).sandboxID)

    // A paused sandbox holds no place; taking its memory back is refused while the others hold it.
    const pause = await api.request('POST', `/sandboxes/${ids[0]}/pause`, { key })
    expect(pause.status).toBe(204)
    expect((await create()).status).toBe(201)
    const resume = await api.request('POST', `/sandboxes/${ids[0]}/connect`, {
      key,
      json: { timeout: 60 },
    })
    expectApiError(resume, 429)
    expect((resume.body as { message: string }).message).toMatch(/memory/)
    expect(
      (await api.request('GET', `/sandboxes/${ids[0]}`, { key })).body as { state: string },
    ).toMatchObject({ state: 'paused' })

    // One template: a second name is refused, a new build of the first is not.
    const build = (name: string) =>
      api.request('POST', '/v3/templates', { key, json: { name, cpuCount: 1, memoryMB: 512 } })
    expect((await build('one')).status).toBe(202)
    const two = await build('two')
    expectApiError(two, 429)
    expect((two.body as { message: string }).message).toMatch(/1 templates/)
    expect((await build('one')).status).toBe(202)

    // null lifts both.
    const lifted = await api.request('PATCH', '/admin/teams/lean', {
      key: admin,
      json: { maxMemoryMb: null, maxTemplates: null },
    })
    expect(lifted.body).toMatchObject({ maxMemoryMb: null, maxTemplates: null })
    expect((await create()).status).toBe(201)
    expect((await build('two')).status).toBe(202)
  })

  it('lists the nodes with their capacity', async () => {
    const res = await api.request('GET', '/admin/nodes', { key: admin })
    expect(res.status).toBe(200)
    const nodes = res.body as Array<Record<string, unknown>>
    expect(nodes).toHaveLength(1)
    expect(nodes[0]).toMatchObject({
      health: 'healthy',
      memoryMbTotal: expect.any(Number),
      cpuCount: expect.any(Number),
    })
  })
})

describe("a team's own keys", () => {
  it('creates, lists and revokes; never an admin key; another team’s key is unknown', async () => {
    const made = await api.request('POST', '/api-keys', { json: { name: 'laptop' } })
    expect(made.status).toBe(201)
    const { key, id, admin: isAdmin } = made.body as { key: string; id: string; admin: boolean }
    expect(isAdmin).toBe(false)
    expect((await api.request('GET', '/me', { key })).status).toBe(200)
    expectApiError(
      await api.request('POST', '/api-keys', { json: { name: 'x', admin: true } }),
      400,
    )

    const listed = await api.request('GET', '/api-keys')
    const row = (listed.body as Array<Record<string, unknown>>).find((k) => k.id === id)
    expect(row).toMatchObject({ name: 'laptop', revokedAt: null })
    expect(JSON.stringify(listed.body)).not.toContain(key)

    // acme's key, revoked through the default team: not found, and still valid.
    const acme = (
      await api.db
        .selectFrom('teams')
        .select('id')
        .where('name', '=', 'acme')
        .executeTakeFirstOrThrow()
    ).id
    const other = await createApiKey(api.db, acme, 'other team')
    expectApiError(await api.request('DELETE', `/api-keys/${other.info.id}`), 404)
    expect((await api.request('GET', '/me', { key: other.key })).status).toBe(200)

    expect((await api.request('DELETE', `/api-keys/${id}`)).status).toBe(204)
    expectApiError(await api.request('GET', '/me', { key }), 401)
    expectApiError(await api.request('DELETE', `/api-keys/${id}`), 404)
  })
})
