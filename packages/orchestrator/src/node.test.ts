import { createLogger, loadOrchestratorConfig, newSandboxId, WarrenError } from '@warren/shared'
import { describe, expect, it } from 'vitest'
import { createNode, type SandboxNode } from './node.js'
import { barrier, MemoryHost } from './testing/memory-host.js'

// The node's state machine over an in-memory host: which sandbox is in which
// state, what memory it holds, one operation per sandbox at a time, and what
// every failure rolls back. No root, no containers.

const quiet = () => createLogger('node-test', 'silent')

function setup(over: { memoryCapacityMb?: number; maxFrozenMemoryMb?: number } = {}) {
  const host = new MemoryHost()
  const cfg = loadOrchestratorConfig(
    { nodeId: 'unit', memoryCapacityMb: 4096, maxConcurrentCreates: 4, ...over },
    {},
  )
  return { host, node: createNode(cfg, { host, log: quiet() }) }
}

async function created(
  node: SandboxNode,
  over: Partial<Parameters<SandboxNode['create']>[0]> = {},
) {
  return node.create({ sandboxId: newSandboxId(), templateId: 'base', memoryMb: 512, ...over })
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return err instanceof WarrenError ? err.code : `raw: ${(err as Error).message}`
  }
}

describe('create', () => {
  it('reserves memory and a slot, and gives both back when the host fails', async () => {
    const { host, node } = setup()
    const r = await created(node)
    expect(r.state).toBe('running')
    expect(node.info().memoryMbAllocated).toBe(512)
    host.failNext('create')
    const id = newSandboxId()
    expect(await code(created(node, { sandboxId: id }))).toBe('raw: create failed')
    expect(node.info().memoryMbAllocated).toBe(512)
    expect(() => node.get(id)).toThrow(/not found/)
    // The id is free again.
    expect((await created(node, { sandboxId: id })).sandboxId).toBe(id)
  })

  it('creates from a named build, and refuses a build id that is not one path component', async () => {
    const { host, node } = setup()
    const buildId = host.template('base').buildId
    expect((await created(node, { buildId })).buildId).toBe(buildId)
    expect(await code(created(node, { buildId: 'gone' }))).toBe('not_found')
    expect(await code(created(node, { buildId: '../../etc' }))).toBe('invalid_argument')
    expect(node.info().memoryMbAllocated).toBe(512)
  })

  it('has one winner for two creates of one id', async () => {
    const { node } = setup()
    const id = newSandboxId()
    const results = await Promise.all([
      code(created(node, { sandboxId: id })),
      code(created(node, { sandboxId: id })),
    ])
    expect(results.sort()).toEqual(['already_exists', 'ok'])
    expect(node.info().memoryMbAllocated).toBe(512)
  })

  it('refuses what does not fit or is invalid before touching the host', async () => {
    const { host, node } = setup({ memoryCapacityMb: 1000 })
    expect(await code(created(node, { memoryMb: 1001 }))).toBe('capacity_exhausted')
    expect(await code(created(node, { memoryMb: 32 }))).toBe('invalid_argument')
    expect(await code(created(node, { cpuCount: 64 }))).toBe('invalid_argument')
    expect(await code(created(node, { templateId: 'nope' }))).toBe('not_found')
    expect(await code(created(node, { network: { denyOut: ['example.com'] } }))).toBe(
      'invalid_argument',
    )
    expect(await code(created(node, { sandboxId: 'bad id' }))).toBe('invalid_argument')
    expect(host.calls).toEqual([])
    expect(node.info().memoryMbAllocated).toBe(0)
  })

  it('sets the policy in force from the network config', async () => {
    const { node } = setup()
    const r = await created(node, { network: { denyIn: ['0.0.0.0/0:8080'] } })
    expect(node.networkPolicy(r.sandboxId)?.ingress.deny).toHaveLength(1)
  })
})

describe('kill', () => {
  it('removes the sandbox, its slot, policy and memory', async () => {
    const { host, node } = setup()
    const r = await created(node)
    await node.kill(r.sandboxId)
    expect(() => node.get(r.sandboxId)).toThrow(/not found/)
    expect(node.info()).toMatchObject({ memoryMbAllocated: 0, sandboxes: 0 })
    expect(host.slotsInUse.size).toBe(0)
    expect(node.networkPolicy(r.sandboxId)).toBeUndefined()
    expect(await code(node.kill(r.sandboxId))).toBe('not_found')
  })

  it('shares one removal between concurrent kills', async () => {
    const { host, node } = setup()
    const r = await created(node)
    const results = await Promise.all([node.kill(r.sandboxId), node.kill(r.sandboxId)])
    expect(results).toEqual([undefined, undefined])
    expect(host.calls.filter((c) => c.startsWith('destroy'))).toHaveLength(1)
  })

  it('refuses a sandbox still being created', async () => {
    const { host, node } = setup()
    const gate = barrier()
    host.on('create', () => gate.wait)
    const id = newSandboxId()
    const creating = created(node, { sandboxId: id })
    expect(await code(node.kill(id))).toBe('conflict')
    gate.open()
    await creating
  })

  it('waits for a resume under way, then kills', async () => {
    const { host, node } = setup()
    const r = await created(node)
    await node.pause(r.sandboxId, { memory: true })
    const gate = barrier()
    host.on('thaw', () => gate.wait)
    const resuming = node.resume(r.sandboxId, {})
    const killing = node.kill(r.sandboxId)
    gate.open()
    expect((await resuming).kind).toBe('memory')
    await killing
    expect(host.calls.slice(-2)).toEqual([`thaw ${r.sandboxId}`, `destroy ${r.sandboxId}`])
    expect(node.info().memoryMbAllocated).toBe(0)
  })
})

describe('pause', () => {
  it('freezes with memory, keeping memory and slot', async () => {
    const { host, node } = setup()
    const r = await created(node)
    const p = await node.pause(r.sandboxId, { memory: true })
    expect(p).toMatchObject({ state: 'paused', pausedKind: 'memory', sandboxIp: r.sandboxIp })
    expect(host.containers.get(r.sandboxId)).toBe('frozen')
    expect(host.records.get(r.sandboxId)?.pausedKind).toBe('memory')
    expect(node.info().memoryMbAllocated).toBe(512)
    expect(await code(node.pause(r.sandboxId, { memory: true }))).toBe('conflict')
  })

  it('drops to files: memory and slot go back, the policy stays without an address', async () => {
    const { host, node } = setup()
    const r = await created(node, { network: { denyIn: ['0.0.0.0/0:22'] } })
    const p = await node.pause(r.sandboxId, { memory: false })
    expect(p).toMatchObject({ state: 'paused', pausedKind: 'files', sandboxIp: null })
    expect(host.containers.get(r.sandboxId)).toBe('gone')
    expect(host.slotsInUse.size).toBe(0)
    expect(node.info().memoryMbAllocated).toBe(0)
    expect(node.networkPolicy(r.sandboxId)?.ingress.deny).toHaveLength(1)
  })

  it('records the files-only snapshot before dropping anything (a crash then keeps the files)', async () => {
    const { host, node } = setup()
    const r = await created(node)
    let recordedAtDrop: string | undefined
    host.on('dropToFiles', (id) => {
      recordedAtDrop = `${host.records.get(id)?.state}/${host.records.get(id)?.pausedKind}`
    })
    await node.pause(r.sandboxId, { memory: false })
    expect(recordedAtDrop).toBe('paused/files')
    // A drop that fails puts the record back as it was.
    const s = await created(node)
    host.failNext('dropToFiles')
    await code(node.pause(s.sandboxId, { memory: false }))
    expect(host.records.get(s.sandboxId)?.state).toBe('running')
  })

  it('a failed freeze leaves the sandbox running', async () => {
    const { host, node } = setup()
    const r = await created(node)
    host.failNext('freeze')
    expect(await code(node.pause(r.sandboxId, { memory: true }))).toBe('raw: freeze failed')
    expect(node.get(r.sandboxId).state).toBe('running')
  })

  it('a files-only pause whose drop fails thaws the sandbox: it is running, as reported', async () => {
    const { host, node } = setup()
    const r = await created(node)
    host.failNext('dropToFiles')
    expect(await code(node.pause(r.sandboxId, { memory: false }))).toBe('raw: dropToFiles failed')
    expect(node.get(r.sandboxId).state).toBe('running')
    expect(host.containers.get(r.sandboxId)).toBe('running')
    expect(node.info().memoryMbAllocated).toBe(512)
  })

  it('a files-only pause that can neither drop nor thaw reports the frozen truth', async () => {
    const { host, node } = setup()
    const r = await created(node)
    host.failNext('dropToFiles')
    host.failNext('thaw')
    const p = await node.pause(r.sandboxId, { memory: false })
    expect(p).toMatchObject({ state: 'paused', pausedKind: 'memory' })
    expect(host.containers.get(r.sandboxId)).toBe('frozen')
    expect(node.get(r.sandboxId).pausedKind).toBe('memory')
  })
})

describe('resume', () => {
  it('thaws frozen processes (hot)', async () => {
    const { host, node } = setup()
    const r = await created(node)
    await node.pause(r.sandboxId, { memory: true })
    const res = await node.resume(r.sandboxId, {})
    expect(res.kind).toBe('memory')
    expect(res.record).toMatchObject({ state: 'running', sandboxIp: r.sandboxIp })
    expect(res.record.pausedKind).toBeUndefined()
    expect(host.containers.get(r.sandboxId)).toBe('running')
  })

  it('boots from the files when the frozen processes are gone, or when asked', async () => {
    const { host, node } = setup()
    const a = await created(node)
    const b = await created(node)
    await node.pause(a.sandboxId, { memory: true })
    await node.pause(b.sandboxId, { memory: true })
    host.containers.set(a.sandboxId, 'gone') // killed behind the node's back
    expect((await node.resume(a.sandboxId, {})).kind).toBe('files')
    expect((await node.resume(b.sandboxId, { memory: false })).kind).toBe('files')
    expect(host.calls.filter((c) => c.startsWith('bootFromFiles'))).toHaveLength(2)
    expect(node.info().memoryMbAllocated).toBe(1024)
  })

  it('a failed cold boot leaves a files-only snapshot and gives the memory back', async () => {
    const { host, node } = setup()
    const r = await created(node)
    await node.pause(r.sandboxId, { memory: false })
    host.failNext('bootFromFiles')
    expect(await code(node.resume(r.sandboxId, {}))).toBe('raw: bootFromFiles failed')
    expect(node.get(r.sandboxId)).toMatchObject({ state: 'paused', pausedKind: 'files' })
    expect(node.info().memoryMbAllocated).toBe(0)
    expect((await node.resume(r.sandboxId, {})).kind).toBe('files')
  })

  it('a cold resume that does not fit is refused and changes nothing', async () => {
    const { node } = setup({ memoryCapacityMb: 1024 })
    const r = await created(node)
    await node.pause(r.sandboxId, { memory: false })
    await created(node)
    await created(node)
    expect(await code(node.resume(r.sandboxId, {}))).toBe('capacity_exhausted')
    expect(node.get(r.sandboxId).pausedKind).toBe('files')
  })

  it('of two concurrent resumes one wins; the other finds it running', async () => {
    const { node } = setup()
    const r = await created(node)
    await node.pause(r.sandboxId, { memory: true })
    const results = await Promise.all([
      code(node.resume(r.sandboxId, {})),
      code(node.resume(r.sandboxId, {})),
    ])
    expect(results.sort()).toEqual(['conflict', 'ok'])
  })
})

describe('network updates', () => {
  it('applies the rules, then the record and the policy follow', async () => {
    const { host, node } = setup()
    const r = await created(node)
    const updated = await node.updateNetwork(r.sandboxId, { denyOut: ['198.51.100.0/24'] }, null)
    expect(updated.network).toEqual({ denyOut: ['198.51.100.0/24'] })
    expect(host.records.get(r.sandboxId)?.network).toEqual({ denyOut: ['198.51.100.0/24'] })
    expect(node.networkPolicy(r.sandboxId)?.egress.deny).toHaveLength(1)
    expect(host.calls.at(-1)).toBe(`cutDeniedFlows ${r.sandboxId}`)
  })

  it('a failed apply keeps the old rules in force and in the record', async () => {
    const { host, node } = setup()
    const r = await created(node, { network: { denyOut: ['203.0.113.20'] } })
    const before = node.networkPolicy(r.sandboxId)
    host.failNext('applyEgress')
    expect(await code(node.updateNetwork(r.sandboxId, { denyOut: ['0.0.0.0/0'] }, null))).toBe(
      'internal',
    )
    expect(node.networkPolicy(r.sandboxId)).toBe(before)
    expect(host.policies.egressFor(r.sandboxIp!)?.egress).toEqual([before?.egress])
    expect(node.get(r.sandboxId).network).toEqual({ denyOut: ['203.0.113.20'] })
    expect(host.records.get(r.sandboxId)?.network).toEqual({ denyOut: ['203.0.113.20'] })
    // The same update goes through afterwards.
    await node.updateNetwork(r.sandboxId, { denyOut: ['0.0.0.0/0'] }, null)
    expect(node.networkPolicy(r.sandboxId)?.egress.denyAll).toBe(true)
  })

  it('both policies apply while the rules switch', async () => {
    const { host, node } = setup()
    const r = await created(node, { network: { denyOut: ['203.0.113.20'] } })
    const gate = barrier()
    host.on('applyEgress', () => gate.wait)
    const updating = node.updateNetwork(r.sandboxId, { denyOut: ['203.0.113.30'] }, null)
    await Promise.resolve()
    await new Promise((r) => setImmediate(r))
    expect(host.policies.egressFor(r.sandboxIp!)?.egress).toHaveLength(2)
    gate.open()
    await updating
    expect(host.policies.egressFor(r.sandboxIp!)?.egress).toHaveLength(1)
  })

  it('refuses a bad config before the lookup, and a sandbox that is not running', async () => {
    const { host, node } = setup()
    expect(await code(node.updateNetwork(newSandboxId(), { allowOut: ['x.test'] }, null))).toBe(
      'invalid_argument',
    )
    const r = await created(node)
    await node.pause(r.sandboxId, { memory: false })
    expect(await code(node.updateNetwork(r.sandboxId, {}, null))).toBe('conflict')
    expect(host.calls.filter((c) => c.startsWith('applyEgress'))).toEqual([])
  })

  it('concurrent updates apply one at a time, the last one in force', async () => {
    const { node } = setup()
    const r = await created(node)
    const bodies = ['198.51.100.1', '198.51.100.2', '198.51.100.3'].map((ip) => ({ denyOut: [ip] }))
    await Promise.all(bodies.map((b) => node.updateNetwork(r.sandboxId, b, null)))
    expect(node.get(r.sandboxId).network).toEqual(bodies.at(-1))
  })
})

describe('frozen-memory budget', () => {
  it('drops the oldest frozen sandboxes to files past the budget', async () => {
    // Each frozen sandbox holds 100 MB (the memory host's reading); the budget fits two.
    const { host, node } = setup({ maxFrozenMemoryMb: 250 })
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await created(node)).sandboxId)
    for (const id of ids) {
      await node.pause(id, { memory: true })
      await new Promise((r) => setTimeout(r, 2)) // distinct pausedAt
    }
    await node.frozenBudgetSettled()
    expect(ids.map((id) => node.get(id).pausedKind)).toEqual(['files', 'memory', 'memory'])
    expect(host.containers.get(ids[0]!)).toBe('gone')
    expect(node.info().memoryMbAllocated).toBe(1024)
  })

  it('skips a sandbox killed before its turn', async () => {
    const { host, node } = setup({ maxFrozenMemoryMb: 150 })
    const a = await created(node)
    const b = await created(node)
    await node.pause(a.sandboxId, { memory: true })
    const gate = barrier()
    host.on('destroy', () => gate.wait)
    const killing = node.kill(a.sandboxId)
    // b's pause puts two frozen sandboxes over the budget; a, the oldest, is being killed.
    await node.pause(b.sandboxId, { memory: true })
    gate.open()
    await killing
    await node.frozenBudgetSettled()
    expect(host.calls.filter((c) => c.startsWith('dropToFiles'))).toEqual([])
    expect(node.get(b.sandboxId).pausedKind).toBe('memory')
  })
})

describe('start', () => {
  it('adopts what the host kept, with its memory', async () => {
    const host = new MemoryHost()
    const first = createNode(loadOrchestratorConfig({ memoryCapacityMb: 4096 }, {}), {
      host,
      log: quiet(),
    })
    const r = await first.create({ sandboxId: newSandboxId(), templateId: 'base', memoryMb: 256 })
    host.adopt = [{ record: r, slot: undefined }]
    const again = createNode(loadOrchestratorConfig({ memoryCapacityMb: 4096 }, {}), {
      host,
      log: quiet(),
    })
    expect(await again.start()).toEqual({ adopted: 1, removed: 0 })
    expect(again.get(r.sandboxId).state).toBe('running')
    expect(again.info().memoryMbAllocated).toBe(256)
  })
})
