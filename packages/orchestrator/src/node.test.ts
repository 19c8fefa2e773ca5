import { newSandboxId } from '@warren/shared'
import { describe, expect, it } from 'vitest'
import { barrier } from './testing/memory-host.js'
import { code, created, setup } from './testing/node-setup.js'

// The node's state machine over an in-memory host: which sandbox is in which
// state, what memory it holds, one operation per sandbox at a time, and what
// every failure rolls back. No root, no containers.

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
    await node.teardownsSettled()
    expect(host.slotsInUse.size).toBe(0)
    expect(node.networkPolicy(r.sandboxId)).toBeUndefined()
    expect(await code(node.kill(r.sandboxId))).toBe('not_found')
  })

  it('shares one removal between concurrent kills', async () => {
    const { host, node } = setup()
    const r = await created(node)
    const results = await Promise.all([node.kill(r.sandboxId), node.kill(r.sandboxId)])
    expect(results).toEqual([undefined, undefined])
    await node.teardownsSettled()
    expect(host.calls.filter((c) => c.startsWith('cutOff'))).toHaveLength(1)
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
    await node.teardownsSettled()
    expect(host.calls.slice(-3)).toEqual([
      `thaw ${r.sandboxId}`,
      `cutOff ${r.sandboxId}`,
      `destroy ${r.sandboxId}`,
    ])
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
