// Volumes through the API, in process: the routes' validation, names per
// team, mounts that pin a sandbox to its volume's node, and the races a
// delete can run into (a create that mounts the volume, a node that fails
// or refuses). The stand-in node holds a call at a gate to keep an
// operation halfway.
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Placement } from '../placement/nodes.js'
import { getVolume, insertVolume, setVolumeState } from '../store/volumes.js'
import { expectApiError } from '../testing/assertions.js'
import { type InProcessApi, settle, startInProcessApi } from '../testing/in-process.js'
import { StandInNode, unreachable } from '../testing/stand-in-node.js'
import { recoverVolumes } from './manage.js'

let api: InProcessApi
beforeEach(async () => {
  api = await startInProcessApi()
})
afterEach(() => api.close())

async function volume(name = 'data'): Promise<{ volumeID: string; token: string }> {
  const res = await api.request('POST', '/volumes', { json: { name } })
  expect(res.status, res.text).toBe(201)
  return res.body as { volumeID: string; token: string }
}

const mount = (name: string, path = '/data') =>
  api.request('POST', '/v2/sandboxes', {
    json: { templateID: 'base', volumeMounts: [{ name, path }] },
  })
const destroy = (id: string) => api.request('DELETE', `/volumes/${id}`)

describe('volume routes', () => {
  it('create (201, default size), list, get, delete once (then 404)', async () => {
    const v = await volume('my-vol')
    expect(api.node.volumes.get(v.volumeID)).toBe(64)
    const created = (await api.request('GET', `/volumes/${v.volumeID}`)).body
    expect(created).toEqual({
      volumeID: v.volumeID,
      name: 'my-vol',
      sizeMB: 64,
      token: v.token,
      domain: 'sandbox.test',
    })
    const sized = await api.request('POST', '/volumes', { json: { name: 'big', sizeMB: 2048 } })
    expect(sized.body).toMatchObject({ sizeMB: 2048 })
    const list = await api.request('GET', '/volumes')
    const byName = (list.body as Array<{ name: string }>).sort((x, y) =>
      x.name.localeCompare(y.name),
    )
    expect(byName).toEqual([
      { volumeID: (sized.body as { volumeID: string }).volumeID, name: 'big', sizeMB: 2048 },
      { volumeID: v.volumeID, name: 'my-vol', sizeMB: 64 },
    ])
    expect((await destroy(v.volumeID)).status).toBe(204)
    expect(api.node.volumes.has(v.volumeID)).toBe(false)
    expectApiError(await destroy(v.volumeID), 404)
    expectApiError(await api.request('GET', `/volumes/${v.volumeID}`), 404)
  })

  it('refuses bad bodies, unknown fields, taken names and callers without a key', async () => {
    await volume('taken')
    for (const json of [
      {},
      { name: 'a b' },
      { name: 'a/b' },
      { name: 'taken2', sizeMB: 8 },
      { name: 'taken2', sizeMB: 1.5 },
      { name: 'taken2', extra: 1 },
    ])
      expectApiError(await api.request('POST', '/volumes', { json }), 400)
    expectApiError(
      await api.request('POST', '/volumes', { json: { name: 'taken' } }),
      409,
      /exists/,
    )
    expectApiError(await api.request('GET', '/volumes?x=1'), 400)
    expectApiError(await api.request('GET', '/volumes/UPPER'), 400)
    expectApiError(await api.request('GET', '/volumes', { key: null }), 401)
    expectApiError(await api.request('POST', '/volumes', { key: null, json: { name: 'x' } }), 401)
    expect(api.node.volumes.size).toBe(1)
  })

  it('a failed create on the node leaves no row, and the name free', async () => {
    api.node.failNext('createVolume', unreachable())
    expectApiError(await api.request('POST', '/volumes', { json: { name: 'flaky' } }), 503)
    expect(await api.request('GET', '/volumes').then((r) => r.body)).toEqual([])
    await volume('flaky')
  })

  it("the content API checks the volume's token and the parameters before the node", async () => {
    const a = await volume('a')
    const b = await volume('b')
    const get = (id: string, query: string, token?: string) =>
      api.request('GET', `/volumecontent/${id}/${query}`, {
        key: null,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      })
    expectApiError(await get(a.volumeID, 'dir?path=/'), 401)
    expectApiError(await get(a.volumeID, 'dir?path=/', 'wrong'), 401)
    expectApiError(await get(a.volumeID, 'dir?path=/', b.token), 401)
    expectApiError(await get('a'.repeat(20), 'dir?path=/', a.token), 404)
    expectApiError(await get(a.volumeID, 'nothing?path=/', a.token), 404)
    expectApiError(await get(a.volumeID, 'dir?path=/&color=red', a.token), 400)
    expectApiError(await get(a.volumeID, 'dir?path=/a/../..', a.token), 400)
    expectApiError(await get(a.volumeID, 'dir', a.token), 400)
    expectApiError(await get(a.volumeID, 'dir?path=/&depth=100', a.token), 400)
  })
})

describe('mounts', () => {
  it('go to the node with the mounts; the sandbox reports them; a mounted volume stays', async () => {
    const v = await volume('data')
    const res = await mount('data', '/mnt/data')
    expect(res.status, res.text).toBe(201)
    const id = (res.body as { sandboxID: string }).sandboxID
    expect(api.node.sandboxes.get(id)?.volumes).toEqual([v.volumeID])
    const detail = await api.request('GET', `/sandboxes/${id}`)
    expect(detail.body).toMatchObject({ volumeMounts: [{ name: 'data', path: '/mnt/data' }] })
    const listed = (await api.request('GET', '/v2/sandboxes')).body as Array<{
      volumeMounts: unknown
    }>
    expect(listed[0]?.volumeMounts).toEqual([{ name: 'data', path: '/mnt/data' }])

    expectApiError(await destroy(v.volumeID), 409, /mounted by sandbox/)
    // Paused, it still holds the volume: a resume mounts it again.
    expect((await api.request('POST', `/sandboxes/${id}/pause`, { json: {} })).status).toBe(204)
    expectApiError(await destroy(v.volumeID), 409)
    expect((await api.request('DELETE', `/sandboxes/${id}`)).status).toBe(204)
    expect((await destroy(v.volumeID)).status).toBe(204)
  })

  it('refuses a volume of another team, of no one, or on two nodes', async () => {
    await api.close()
    const other = new StandInNode('node-2')
    api = await startInProcessApi({ nodes: [new StandInNode('node-1'), other] })
    const a = await volume('a')
    // A volume of another team, put there directly.
    await api.db
      .insertInto('teams')
      .values({ id: 'team-b', name: 'b', max_concurrent: 1, max_lifetime_s: 60, created_at: 0 })
      .execute()
    await insertVolume(api.db, {
      volumeId: 'x'.repeat(20),
      teamId: 'team-b',
      name: 'theirs',
      nodeId: 'node-1',
      sizeMb: 64,
      token: 't',
      state: 'creating',
      version: 0,
      createdAt: 0,
    })
    await setVolumeState(api.db, 'x'.repeat(20), 'creating', 'ready')
    expectApiError(await mount('theirs'), 400, /not found/)
    expectApiError(await api.request('GET', `/volumes/${'x'.repeat(20)}`), 404)
    expectApiError(await destroy('x'.repeat(20)), 404)
    expectApiError(await mount('nobody'), 400, /not found/)
    // Volumes of two nodes cannot go into one sandbox.
    const b = await volume('b')
    const nodeOf = async (id: string) => (await getVolume(api.db, id))?.nodeId
    if ((await nodeOf(a.volumeID)) === (await nodeOf(b.volumeID))) {
      await api.db
        .updateTable('volumes')
        .set({ node_id: 'node-2' })
        .where('id', '=', b.volumeID)
        .execute()
    }
    const both = await api.request('POST', '/v2/sandboxes', {
      json: {
        templateID: 'base',
        volumeMounts: [
          { name: 'a', path: '/a' },
          { name: 'b', path: '/b' },
        ],
      },
    })
    expectApiError(both, 400, /different nodes/)
    // One volume's sandbox goes to its node, whichever has more room.
    const pinned = await mount('a')
    const id = (pinned.body as { sandboxID: string }).sandboxID
    expect((await api.row(id)).nodeId).toBe(await nodeOf(a.volumeID))
  })

  it('refuses bad mount paths and duplicates with 400, creating nothing', async () => {
    await volume('v')
    await volume('w')
    for (const volumeMounts of [
      [{ name: 'v', path: 'data' }],
      [{ name: 'v', path: '/' }],
      [{ name: 'v', path: '/proc' }],
      [{ name: 'v', path: '/opt/warren/envd' }],
      [{ name: 'v', path: '/a//b' }],
      [{ name: 'v', path: '/a/./b' }],
      [{ name: 'v', path: '/data', mode: 'ro' }],
      [
        { name: 'v', path: '/a' },
        { name: 'v', path: '/b' },
      ],
      [
        { name: 'v', path: '/a' },
        { name: 'w', path: '/a' },
      ],
      [
        { name: 'v', path: '/a' },
        { name: 'w', path: '/a/b' },
      ],
    ]) {
      const res = await api.request('POST', '/v2/sandboxes', {
        json: { templateID: 'base', volumeMounts },
      })
      expectApiError(res, 400)
    }
    expect(await api.rows()).toEqual([])
    expect(api.node.callsOf('create')).toEqual([])
  })
})

describe('delete against a create that mounts the volume', () => {
  it('a create under way holds the volume: the delete gets 409', async () => {
    const v = await volume('data')
    const gate = api.node.hold('create')
    const creating = mount('data')
    await gate.entered
    expectApiError(await destroy(v.volumeID), 409, /mounted by sandbox/)
    gate.release()
    expect((await creating).status).toBe(201)
    expect(api.node.volumes.has(v.volumeID)).toBe(true)
  })

  it('a failed create releases the volume', async () => {
    const v = await volume('data')
    const gate = api.node.hold('create')
    const creating = mount('data')
    await gate.entered
    gate.fail(unreachable())
    expect((await creating).status).toBe(503)
    expect(await api.rows()).toEqual([])
    expect((await destroy(v.volumeID)).status).toBe(204)
  })

  it('a delete under way makes a create that mounts the volume fail, leaving nothing', async () => {
    const v = await volume('data')
    const gate = api.node.hold('deleteVolume')
    const deleting = destroy(v.volumeID)
    await gate.entered
    // Being deleted, it is no longer there for new mounts.
    expectApiError(await mount('data'), 400, /not found/)
    expectApiError(await api.request('GET', `/volumes/${v.volumeID}`), 404)
    gate.release()
    expect((await deleting).status).toBe(204)
    expect(await api.rows()).toEqual([])
    expect(api.node.callsOf('create')).toEqual([])
    expectApiError(await mount('data'), 400, /not found/)
  })

  it('of many concurrent pairs, each ends one way: a sandbox on a live volume, or neither', async () => {
    for (let i = 0; i < 20; i++) {
      const v = await volume(`race-${i}`)
      const [created, deleted] = await Promise.all([mount(`race-${i}`), destroy(v.volumeID)])
      await settle()
      if (created.status === 201) {
        expect(deleted.status, `round ${i}`).toBe(409)
        expect(api.node.volumes.has(v.volumeID)).toBe(true)
        expect((await getVolume(api.db, v.volumeID))?.state).toBe('ready')
      } else {
        expect([400, 409], `round ${i}`).toContain(created.status)
        expect(deleted.status, `round ${i}`).toBe(204)
        expect(api.node.volumes.has(v.volumeID)).toBe(false)
      }
    }
    for (const s of api.node.sandboxes.values())
      for (const id of s.volumes) expect(api.node.volumes.has(id)).toBe(true)
  })
})

describe('delete when the node fails or refuses', () => {
  it('an unreachable node: 503, and the volume is ready again', async () => {
    const v = await volume('data')
    api.node.failNext('deleteVolume', unreachable())
    expectApiError(await destroy(v.volumeID), 503)
    expect((await getVolume(api.db, v.volumeID))?.state).toBe('ready')
    expect((await mount('data')).status).toBe(201)
  })

  it("the node's own refusal (a sandbox the store thinks killed still mounts it): 409", async () => {
    const v = await volume('data')
    api.node.put({ sandboxId: 'z'.repeat(20), volumes: [v.volumeID] })
    expectApiError(await destroy(v.volumeID), 409)
    expect((await getVolume(api.db, v.volumeID))?.state).toBe('ready')
  })

  it("a node that no longer has it: the volume's row goes", async () => {
    const v = await volume('data')
    api.node.volumes.delete(v.volumeID)
    expect((await destroy(v.volumeID)).status).toBe(204)
    expect(await getVolume(api.db, v.volumeID)).toBeUndefined()
  })
})

describe('recovery at start', () => {
  it('removes volumes an earlier API left being created or deleted', async () => {
    const half = await volume('half')
    const gone = await volume('gone')
    await setVolumeState(api.db, half.volumeID, 'ready', 'creating')
    await setVolumeState(api.db, gone.volumeID, 'ready', 'deleting')
    const log = pino({ level: 'silent' })
    const placement = new Placement(log)
    await placement.register(api.node.transport)
    await recoverVolumes({ db: api.db, placement, clock: api.clock, log })
    expect(await getVolume(api.db, half.volumeID)).toBeUndefined()
    expect(await getVolume(api.db, gone.volumeID)).toBeUndefined()
    expect(api.node.volumes.size).toBe(0)
  })
})
