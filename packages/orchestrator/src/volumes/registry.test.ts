import { createLogger, loadOrchestratorConfig, newSandboxId, WarrenError } from '@warren/shared'
import { describe, expect, it } from 'vitest'
import { createNode } from '../create-node.js'
import type { SandboxNode } from '../node.js'
import { barrier, MemoryHost } from '../testing/memory-host.js'

// The node's volumes over an in-memory host: a volume is claimed by the
// sandboxes that mount it (being created, running or paused), a delete is
// refused while any claim holds, and a create racing a delete has one
// winner. No root, no disks.

const HASH = 'a'.repeat(64)

async function setup() {
  const host = new MemoryHost()
  const cfg = loadOrchestratorConfig({ nodeId: 'unit', memoryCapacityMb: 4096 }, {})
  const node = createNode(cfg, { host, log: createLogger('volume-test', 'silent') })
  await node.start()
  return { host, node }
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return err instanceof WarrenError ? err.code : `raw: ${(err as Error).message}`
  }
}

const vid = () => newSandboxId()

function mounting(node: SandboxNode, volumeId: string, sandboxId = newSandboxId()) {
  return node.create({
    sandboxId,
    templateId: 'base',
    memoryMb: 256,
    volumeMounts: [{ volumeId, name: 'data', path: '/data' }],
  })
}

describe('volume create and delete', () => {
  it('checks its input, refuses a second create of an id, and deletes once', async () => {
    const { host, node } = await setup()
    const id = vid()
    expect(
      await code(node.volumes.create({ volumeId: 'BAD', sizeMb: 64, tokenSha256: HASH })),
    ).toBe('invalid_argument')
    expect(await code(node.volumes.create({ volumeId: id, sizeMb: 1, tokenSha256: HASH }))).toBe(
      'invalid_argument',
    )
    expect(await code(node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: 'x' }))).toBe(
      'invalid_argument',
    )
    await node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH })
    expect(host.volumes.get(id)).toMatchObject({ sizeMb: 64, tokenSha256: HASH })
    expect(node.volumes.ready(id)?.volumeId).toBe(id)
    expect(await code(node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH }))).toBe(
      'already_exists',
    )
    await node.volumes.delete(id)
    expect(host.volumes.has(id)).toBe(false)
    expect(await code(node.volumes.delete(id))).toBe('not_found')
  })

  it('forgets a volume whose disk could not be made', async () => {
    const { host, node } = await setup()
    const id = vid()
    host.failNext('createVolume')
    expect(await code(node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH }))).toBe(
      'raw: createVolume failed',
    )
    expect(node.volumes.ready(id)).toBeUndefined()
    await node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH })
  })

  it('keeps a volume whose delete failed', async () => {
    const { host, node } = await setup()
    const id = vid()
    await node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH })
    host.failNext('deleteVolume')
    expect(await code(node.volumes.delete(id))).toBe('raw: deleteVolume failed')
    expect(node.volumes.ready(id)?.volumeId).toBe(id)
    await node.volumes.delete(id)
  })
})

describe('claims', () => {
  it('a running or paused sandbox holds its volume; a kill lets it go', async () => {
    const { host, node } = await setup()
    const id = vid()
    await node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH })
    const r = await mounting(node, id)
    expect(host.records.get(r.sandboxId)?.volumeMounts).toEqual([
      { volumeId: id, name: 'data', path: '/data' },
    ])
    expect(await code(node.volumes.delete(id))).toBe('conflict')
    await node.pause(r.sandboxId, { memory: false })
    expect(await code(node.volumes.delete(id))).toBe('conflict')
    await node.kill(r.sandboxId)
    await node.volumes.delete(id)
  })

  it('a kill lets its volume go when it answers, before its teardown has ended', async () => {
    const { host, node } = await setup()
    const id = vid()
    await node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH })
    const r = await mounting(node, id)
    const gate = barrier()
    host.on('destroy', () => gate.wait)
    await node.kill(r.sandboxId)
    expect(node.pendingTeardowns()).toBe(1)
    await node.volumes.delete(id)
    gate.open()
    await node.teardownsSettled()
  })

  it('a create of a volume not on the node, or mounted twice, is refused before anything', async () => {
    const { host, node } = await setup()
    expect(await code(mounting(node, vid()))).toBe('not_found')
    const id = vid()
    await node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH })
    const twice = node.create({
      sandboxId: newSandboxId(),
      templateId: 'base',
      volumeMounts: [
        { volumeId: id, name: 'a', path: '/a' },
        { volumeId: id, name: 'b', path: '/b' },
      ],
    })
    expect(await code(twice)).toBe('invalid_argument')
    expect(host.calls.filter((c) => c.startsWith('create '))).toEqual([])
  })

  it('a create under way holds the volume against a delete', async () => {
    const { host, node } = await setup()
    const id = vid()
    await node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH })
    const b = barrier()
    host.on('create', () => b.wait)
    const creating = mounting(node, id)
    expect(await code(node.volumes.delete(id))).toBe('conflict')
    b.open()
    expect((await creating).state).toBe('running')
  })

  it('a failed create gives its claim back', async () => {
    const { host, node } = await setup()
    const id = vid()
    await node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH })
    host.failNext('create')
    expect(await code(mounting(node, id))).toBe('raw: create failed')
    await node.volumes.delete(id)
  })

  it('a delete under way makes a create that mounts the volume fail', async () => {
    const { host, node } = await setup()
    const id = vid()
    await node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH })
    const b = barrier()
    host.on('deleteVolume', () => b.wait)
    const deleting = node.volumes.delete(id)
    expect(await code(mounting(node, id))).toBe('conflict')
    b.open()
    await deleting
    expect(await code(mounting(node, id))).toBe('not_found')
    expect(node.list()).toEqual([])
  })

  it('claims of adopted sandboxes are restored at start', async () => {
    const first = await setup()
    const id = vid()
    await first.node.volumes.create({ volumeId: id, sizeMb: 64, tokenSha256: HASH })
    const r = await mounting(first.node, id)
    // A restart: a new node on a host that kept the volume and the sandbox.
    const host = first.host
    host.adopt = [{ record: host.records.get(r.sandboxId)!, slot: undefined }]
    const cfg = loadOrchestratorConfig({ nodeId: 'unit', memoryCapacityMb: 4096 }, {})
    const again = createNode(cfg, { host, log: createLogger('volume-test', 'silent') })
    await again.start()
    expect(await code(again.volumes.delete(id))).toBe('conflict')
  })
})
