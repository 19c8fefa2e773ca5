// Sandboxes that move between nodes: three orchestrator nodes (separate
// processes, TLS, the cluster secret) behind one API on a private
// PostgreSQL. Nodes 0 and 1 publish every pause to a shared snapshot store
// (a directory here, a shared filesystem in production); node 2 has none,
// so what moves from it is pulled from it over its RPC port. Each resume
// elsewhere is cold (`resumedFrom: files`) and brings the sandbox's files.
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { Sandbox } from 'e2b'
import { afterAll, describe, expect, it } from 'vitest'
import { api, eventually } from '../helpers/api-client.js'
import { type ClusterNode, useCluster } from '../helpers/cluster-fixture.js'
import { TEMPLATES_DIR } from '../helpers/node-fixture.js'

const store = mkdtempSync('/tmp/warren-snapshot-store-')
// Node 2 has a templates directory of its own, holding only the base
// template (linked: it is the machine's): other templates reach it from
// the nodes that have them.
const node2Templates = mkdtempSync('/tmp/warren-templates-')
symlinkSync(join(TEMPLATES_DIR, 'base'), join(node2Templates, 'base'))
afterAll(() => {
  rmSync(store, { recursive: true, force: true })
  rmSync(node2Templates, { recursive: true, force: true })
})

const cluster = useCluster({
  nodes: 3,
  postgres: true,
  nodeEnv: (i) => ({
    ...(i < 2 ? { WARREN_SNAPSHOT_STORE: store } : {}),
    // Node 1 is small, so that it can be filled.
    ...(i === 1 ? { WARREN_MEMORY_CAPACITY_MB: '800' } : {}),
    ...(i === 2 ? { WARREN_TEMPLATES_DIR: node2Templates } : {}),
  }),
})

const node = (i: number): ClusterNode => cluster().nodes[i]!

/** Every node but `keep` is cordoned for `fn` (placement then has one choice). */
async function onlyOn<T>(keep: ClusterNode, fn: () => Promise<T>): Promise<T> {
  const others = cluster().nodes.filter((n) => n !== keep && n.pid() !== undefined)
  const set = (n: ClusterNode, schedulable: string) =>
    cluster().nodeService.setSchedulable({ nodeId: n.nodeId, schedulable })
  for (const n of others) await set(n, 'cordoned')
  try {
    return await fn()
  } finally {
    for (const n of others) await set(n, 'active')
  }
}

async function create(memoryMB = 256, templateID = 'base'): Promise<string> {
  const res = await api(cluster(), 'POST', '/v2/sandboxes', {
    json: { templateID, timeout: 600, memoryMB },
  })
  expect(res.status, res.text).toBe(201)
  return (res.body as { sandboxID: string }).sandboxID
}

/** A sandbox on `where` holding a file of its own, paused (memory kept unless `memory: false`). */
async function pausedWithFile(
  where: ClusterNode,
  memory = true,
): Promise<{ id: string; text: string }> {
  const id = await onlyOn(where, () => create())
  expect(await cluster().nodeOf(id)).toBe(where.nodeId)
  const text = `written on ${where.nodeId} ${Math.random()}`
  const sbx = await Sandbox.connect(id, cluster().sdk)
  await sbx.files.write('/home/user/notes/moved.txt', text)
  // A file the template has, changed, and one it has, removed: the layer's whiteouts move too.
  await sbx.commands.run('sudo rm /etc/debian_version && echo changed | sudo tee /etc/hostname.bak')
  const res = await api(cluster(), 'POST', `/sandboxes/${id}/pause`, { json: { memory } })
  expect(res.status, res.text).toBe(204)
  return { id, text }
}

async function resume(id: string) {
  const res = await api(cluster(), 'POST', `/v2/sandboxes/${id}/connect`, {
    json: { timeout: 600 },
  })
  return res as { status: number; text: string; body: { resumedFrom?: string; message?: string } }
}

async function expectFiles(id: string, text: string) {
  const sbx = await Sandbox.connect(id, cluster().sdk)
  expect(await sbx.files.read('/home/user/notes/moved.txt')).toBe(text)
  const r = await sbx.commands.run('test -e /etc/debian_version; echo $?; cat /etc/hostname.bak')
  expect(r.stdout).toBe('1\nchanged\n')
}

async function state(id: string): Promise<string> {
  const res = await api(cluster(), 'GET', `/sandboxes/${id}`)
  return (res.body as { state: string }).state
}

async function health(n: ClusterNode): Promise<string | undefined> {
  const { nodes } = await cluster().nodeService.listNodes({})
  return nodes.find((x) => x.nodeId === n.nodeId)?.health
}

const kill = (id: string) => api(cluster(), 'DELETE', `/sandboxes/${id}`)

describe('a paused sandbox resumes on another node', () => {
  it('when its node is drained: pulled from that node (no shared store there), cold, with its files', async () => {
    const origin = node(2)
    const { id, text } = await pausedWithFile(origin)
    const running = await onlyOn(origin, () => create())
    const sbx = await Sandbox.connect(running, cluster().sdk)
    await sbx.files.write('/home/user/drained.txt', 'still here')

    const drained = await cluster().nodeService.setSchedulable({
      nodeId: origin.nodeId,
      schedulable: 'draining',
    })
    // Drain pauses what runs (to its files); nothing is killed.
    expect(drained.paused).toBe(1)
    expect(await state(running)).toBe('paused')
    expect(await state(id)).toBe('paused')

    for (const [sid, check] of [
      [id, () => expectFiles(id, text)],
      [
        running,
        async () => {
          const again = await Sandbox.connect(running, cluster().sdk)
          expect(await again.files.read('/home/user/drained.txt')).toBe('still here')
        },
      ],
    ] as const) {
      const res = await resume(sid)
      expect(res.status, res.text).toBe(201)
      expect(res.body.resumedFrom).toBe('files')
      const now = await cluster().nodeOf(sid)
      expect(now).toBeDefined()
      expect(now).not.toBe(origin.nodeId)
      await check()
    }
    // The origin's copies go once the moves are done.
    await eventually(
      'the drained node holds nothing',
      async () => (await origin.rpc.list({})).sandboxes.length === 0,
    )
    await cluster().nodeService.setSchedulable({ nodeId: origin.nodeId, schedulable: 'active' })
    await kill(id)
    await kill(running)
  })

  it('when its node is full: from the shared store, cold, with its files', async () => {
    const origin = node(1)
    const { id, text } = await pausedWithFile(origin, false)
    // What publishing left in the store: the manifest and its blob.
    expect(readdirSync(join(store, 'sandbox'))).toContain(`${id}.json`)
    // 800 MB, 600 of them taken now: no room for the paused sandbox's 256.
    await eventually('its memory is back on its node', async () => {
      const { nodes } = await cluster().nodeService.listNodes({})
      return Number(nodes.find((n) => n.nodeId === origin.nodeId)?.memoryMbFree) >= 600
    })
    const filler = await onlyOn(origin, () => create(600))
    try {
      await resumeWhileFull(id, text, filler)
    } finally {
      await kill(filler)
      await kill(id)
    }
  })

  async function resumeWhileFull(id: string, text: string, filler: string) {
    expect(await cluster().nodeOf(filler)).toBe(node(1).nodeId)

    // Node 2 (no store) is cordoned: the move goes to node 0, through the store.
    await cluster().nodeService.setSchedulable({ nodeId: node(2).nodeId, schedulable: 'cordoned' })
    const res = await resume(id).finally(() =>
      cluster().nodeService.setSchedulable({ nodeId: node(2).nodeId, schedulable: 'active' }),
    )
    expect(res.status, res.text).toBe(201)
    expect(res.body.resumedFrom).toBe('files')
    expect(await cluster().nodeOf(id)).toBe(node(0).nodeId)
    await expectFiles(id, text)
    // A resume makes the published snapshot stale: it is gone from the store.
    expect(readdirSync(join(store, 'sandbox'))).not.toContain(`${id}.json`)
  }

  it('a corrupted transfer is refused by its hash and changes nothing', async () => {
    const origin = node(0)
    const { id, text } = await pausedWithFile(origin)
    const manifest = JSON.parse(readFileSync(join(store, 'sandbox', `${id}.json`), 'utf8')) as {
      files: Array<{ sha256: string; size: number }>
    }
    const blob = join(store, 'blobs', manifest.files[0]!.sha256)
    const good = readFileSync(blob)
    const bad = Buffer.from(good)
    bad[bad.length - 100] = bad[bad.length - 100]! ^ 0xff // same size, other contents
    writeFileSync(blob, bad)

    // Its node is drained: the move reads the store first, and what it
    // reads there does not match its hash.
    // Node 2 (no store, it would pull from the origin) is cordoned.
    const set = (n: ClusterNode, schedulable: string) =>
      cluster().nodeService.setSchedulable({ nodeId: n.nodeId, schedulable })
    await set(node(2), 'cordoned')
    await set(origin, 'draining')
    try {
      const res = await resume(id)
      expect(res.status, res.text).toBe(502)
      expect(res.body.message).toMatch(/sha256/)
      // Nothing changed: still paused on its node, nothing left on the node that tried.
      const after = await api(cluster(), 'GET', `/sandboxes/${id}`)
      expect(after.body).toMatchObject({ state: 'paused' })
      expect(await cluster().nodeOf(id)).toBe(origin.nodeId)
      for (const n of [node(1), node(2)]) {
        expect(readdirSync(join(n.setup.dataDir, 'sandboxes'))).not.toContain(id)
        expect(readdirSyncOr(join(n.setup.dataDir, 'bundles', 'blobs'))).toEqual([])
      }
    } finally {
      await set(origin, 'active')
      await set(node(2), 'active')
    }
    writeFileSync(blob, good)
    const res = await resume(id)
    expect(res.status, res.text).toBe(201)
    expect(await cluster().nodeOf(id)).toBe(origin.nodeId)
    await expectFiles(id, text)
    await kill(id)
  })

  it('a node that lacks a template fetches it from a node that has it, by content hash', async () => {
    const source = await onlyOn(node(0), () => create())
    const sbx = await Sandbox.connect(source, cluster().sdk)
    await sbx.files.write('/home/user/from-template.txt', 'in the layer')
    const snap = await api(cluster(), 'POST', `/sandboxes/${source}/snapshots`, { json: {} })
    expect(snap.status, snap.text).toBe(201)
    const templateId = (snap.body as { snapshotID: string }).snapshotID
    const made = join(TEMPLATES_DIR, templateId, 'template.json')
    expect(existsSync(made), made).toBe(true)
    const layer = (JSON.parse(readFileSync(made, 'utf8')) as { layers: string[] }).layers[0]!
    expect(layer).toMatch(/^layers\/[0-9a-f]{16}$/)
    expect(existsSync(join(node2Templates, layer))).toBe(false)
    // Node 0 says so in its next heartbeat (what the API looks a source up in).
    await eventually('node 0 lists the template', async () => {
      const { nodes } = await cluster().nodeService.listNodes({})
      return !!nodes.find((n) => n.nodeId === node(0).nodeId)?.templates.includes(templateId)
    })
    try {
      // Only node 2 takes sandboxes: it lacks the template, node 0 has it.
      const id = await onlyOn(node(2), () => create(256, templateId))
      expect(await cluster().nodeOf(id)).toBe(node(2).nodeId)
      const there = await Sandbox.connect(id, cluster().sdk)
      expect(await there.files.read('/home/user/from-template.txt')).toBe('in the layer')
      // The layer arrived under its name, its tree digest checked against it.
      const rec = JSON.parse(readFileSync(join(node2Templates, `${layer}.json`), 'utf8')) as {
        digest: string
      }
      expect(rec.digest).toMatch(new RegExp(`^sha256:${layer.slice('layers/'.length)}`))
      expect(existsSync(join(node2Templates, templateId, 'template.json'))).toBe(true)
      await kill(id)
    } finally {
      await kill(source)
      await api(cluster(), 'DELETE', `/templates/${templateId}`)
    }
  })

  it('when its node was SIGKILLed: from the shared store, cold, with its files', async () => {
    const origin = node(0)
    const { id, text } = await pausedWithFile(origin)
    const running = await onlyOn(origin, () => create())
    await origin.kill()
    // Lost past its grace period: the running sandbox is reported lost, the
    // paused one stays paused (its snapshot is in the store).
    await eventually('origin lost', async () => (await health(origin)) === 'lost', 30_000, 250)
    await eventually(
      'the running sandbox is reported lost',
      async () => (await api(cluster(), 'GET', `/sandboxes/${running}`)).status === 404,
      10_000,
      250,
    )
    expect(await state(id)).toBe('paused')

    const res = await resume(id)
    expect(res.status, res.text).toBe(201)
    expect(res.body.resumedFrom).toBe('files')
    // The one other node that shares the store (node 2 could not reach the snapshot).
    expect(await cluster().nodeOf(id)).toBe(node(1).nodeId)
    await expectFiles(id, text)
    // It pauses and resumes on its new node as any sandbox does.
    expect((await api(cluster(), 'POST', `/sandboxes/${id}/pause`, { json: {} })).status).toBe(204)
    const again = await resume(id)
    expect(again.status, again.text).toBe(201)
    expect(again.body.resumedFrom).toBe('memory')
    await kill(id)
  })
})

function readdirSyncOr(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.tmp-'))
  } catch {
    return []
  }
}
