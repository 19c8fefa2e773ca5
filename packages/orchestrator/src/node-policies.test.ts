import { loadOrchestratorConfig, newSandboxId } from '@warren/shared'
import { describe, expect, it } from 'vitest'
import { createNode } from './create-node.js'
import { barrier, MemoryHost } from './testing/memory-host.js'
import { code, created, quiet, setup } from './testing/node-setup.js'

// The node's network updates, frozen-memory budget and adoption at start,
// over an in-memory host (see node.test.ts).

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
