// Isolation choice through the API, in process: placement only on nodes that
// offer it, never a silent runc; GET says which one a sandbox has; a
// snapshot's sandboxes default to its source's; a team's policy requires one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApiKey } from '../store/teams.js'
import { expectApiError } from '../testing/assertions.js'
import { type InProcessApi, startInProcessApi } from '../testing/in-process.js'
import { StandInNode } from '../testing/stand-in-node.js'
import { isolationUnavailable, type NodeState } from './nodes.js'

describe('isolation', () => {
  let api: InProcessApi
  const runcOnly = new StandInNode('node-runc')
  const withGvisor = new StandInNode('node-gvisor')
  withGvisor.isolations = ['runc', 'gvisor']

  beforeAll(async () => {
    api = await startInProcessApi({ nodes: [runcOnly, withGvisor] })
  })
  afterAll(() => api.close())

  it('places a gvisor sandbox only on a node that offers it and reports it', async () => {
    for (let i = 0; i < 3; i++) {
      const id = await api.create({ templateID: 'base', isolation: 'gvisor' })
      expect((await api.row(id)).nodeId).toBe('node-gvisor')
      const got = await api.request('GET', `/sandboxes/${id}`)
      expect(got.status).toBe(200)
      expect((got.body as { isolation: string }).isolation).toBe('gvisor')
    }
  })

  it('forks of a gvisor sandbox are gvisor sandboxes', async () => {
    const id = await api.create({ templateID: 'base', isolation: 'gvisor' })
    const res = await api.request('POST', `/sandboxes/${id}/fork`, { json: { count: 2 } })
    expect(res.status, res.text).toBe(201)
    const forks = res.body as Array<{ sandbox: { sandboxID: string } }>
    expect(forks).toHaveLength(2)
    for (const { sandbox: f } of forks) {
      expect((await api.row(f.sandboxID)).nodeId).toBe('node-gvisor')
      const got = await api.request('GET', `/sandboxes/${f.sandboxID}`)
      expect((got.body as { isolation: string }).isolation).toBe('gvisor')
    }
  })

  it('defaults to runc', async () => {
    const id = await api.create({ templateID: 'base' })
    const got = await api.request('GET', `/sandboxes/${id}`)
    expect((got.body as { isolation: string }).isolation).toBe('runc')
    expect((await api.row(id)).isolation).toBe('runc')
  })

  it("a snapshot's sandboxes get its source's isolation unless they name another", async () => {
    const id = await api.create({ templateID: 'base', isolation: 'gvisor' })
    const snap = await api.request('POST', `/sandboxes/${id}/snapshots`, { json: {} })
    expect(snap.status, snap.text).toBe(201)
    const { snapshotID } = snap.body as { snapshotID: string }
    // The stand-in nodes hold the template wherever a sandbox is made from it.
    for (const n of [runcOnly, withGvisor]) n.templates.push(snapshotID)
    const from = await api.create({ templateID: snapshotID })
    expect((await api.row(from)).isolation).toBe('gvisor')
    expect((await api.row(from)).nodeId).toBe('node-gvisor')
    const named = await api.create({ templateID: snapshotID, isolation: 'runc' })
    expect((await api.row(named)).isolation).toBe('runc')
  })

  it("a template build request sets its template's isolation; a bad one changes nothing", async () => {
    const build = (json: Record<string, unknown>) =>
      api.request('POST', '/v3/templates', { json: { name: 'iso', ...json } })
    const isolationOf = async () =>
      (
        await api.db
          .selectFrom('templates')
          .innerJoin('template_aliases', 'template_aliases.template_id', 'templates.id')
          .select('templates.isolation')
          .where('template_aliases.alias', '=', 'iso')
          .executeTakeFirstOrThrow()
      ).isolation
    expect((await build({ isolation: 'gvisor' })).status).toBe(202)
    expect(await isolationOf()).toBe('gvisor')
    expectApiError(await build({ isolation: 'kvm' }), 400)
    expect((await build({})).status).toBe(202)
    expect(await isolationOf()).toBe('gvisor')
    expect((await build({ isolation: null })).status).toBe(202)
    expect(await isolationOf()).toBeNull()
  })

  it("a team's policy: its sandboxes get the isolation it requires, and may name no other", async () => {
    const admin = (await createApiKey(api.db, api.team.id, 'operator', { admin: true })).key
    const made = await api.request('POST', '/admin/teams', {
      key: admin,
      json: { name: 'strict', requiredIsolation: 'gvisor' },
    })
    expect(made.status, made.text).toBe(201)
    expect(made.body).toMatchObject({ requiredIsolation: 'gvisor' })
    expectApiError(
      await api.request('PATCH', '/admin/teams/strict', {
        key: admin,
        json: { requiredIsolation: 'kvm' },
      }),
      400,
    )
    const key = (
      (await api.request('POST', '/admin/teams/strict/keys', { key: admin, json: { name: 'k' } }))
        .body as { key: string }
    ).key
    const create = (json: Record<string, unknown>) =>
      api.request('POST', '/v2/sandboxes', { key, json: { templateID: 'base', ...json } })

    const chosen = await create({})
    expect(chosen.status, chosen.text).toBe(201)
    const id = (chosen.body as { sandboxID: string }).sandboxID
    expect((await api.row(id)).isolation).toBe('gvisor')
    const before = (await api.rows()).length
    const refused = await create({ isolation: 'runc' })
    expectApiError(refused, 403)
    expect((refused.body as { message: string }).message).toMatch(/requires gvisor/)
    expect((await api.rows()).length).toBe(before)

    // Lifted: the team's sandboxes are runc again unless they say.
    const lifted = await api.request('PATCH', '/admin/teams/strict', {
      key: admin,
      json: { requiredIsolation: null },
    })
    expect(lifted.body).toMatchObject({ requiredIsolation: null })
    const after = (await create({})).body as { sandboxID: string }
    expect((await api.row(after.sandboxID)).isolation).toBe('runc')
  })
})

describe('isolationUnavailable', () => {
  const node = (isolations: string[] | undefined, healthy = true) =>
    ({ nodeId: 'n', healthy, isolations }) as NodeState
  // biome-ignore format: a table reads best one case per line
  const cases: Array<[string, NodeState[], string]> = [
    ['no node offers it', [node(['runc']), node(['runc'], false)], 'invalid_argument'],
    ['the node offering it is down', [node(['runc']), node(['runc', 'gvisor'], false)], 'unavailable'],
    ['a node has not said yet', [node(['runc']), node(undefined, false)], 'unavailable'],
  ]
  it.each(cases)('%s', (_, nodes, code) => {
    expect(isolationUnavailable(nodes, 'gvisor').code).toBe(code)
  })
})
