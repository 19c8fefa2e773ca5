import { newSandboxId } from '@warren/shared'
import { describe, expect, it } from 'vitest'
import { barrier } from '../testing/memory-host.js'
import { code, created, setup } from '../testing/node-setup.js'

// A kill answers once the sandbox is cut off; its teardown runs after, in a
// bounded queue. Over the in-memory host: what is held until the teardown
// ends (its address, its id), and what waits for it.

describe('a kill answered before its teardown', () => {
  it('forgets the sandbox and its memory at once; its address is held until the teardown ends', async () => {
    const { host, node } = setup()
    const r = await created(node)
    const gate = barrier()
    host.on('destroy', () => gate.wait)
    await node.kill(r.sandboxId)
    expect(() => node.get(r.sandboxId)).toThrow(/not found/)
    expect(node.info()).toMatchObject({ memoryMbAllocated: 0, sandboxes: 0 })
    expect(host.containers.get(r.sandboxId)).toBe('gone')
    expect(node.networkPolicy(r.sandboxId)).toBeUndefined()
    expect(node.pendingTeardowns()).toBe(1)
    expect(host.slotsInUse.has(r.slotIndex!)).toBe(true)
    gate.open()
    await node.teardownsSettled()
    expect(node.pendingTeardowns()).toBe(0)
    expect(host.slotsInUse.size).toBe(0)
    expect(host.records.has(r.sandboxId)).toBe(false)
  })

  it('keeps the id taken while its teardown runs: a create of it is refused, a resume finds nothing', async () => {
    const { host, node } = setup()
    const r = await created(node)
    const gate = barrier()
    host.on('destroy', () => gate.wait)
    await node.kill(r.sandboxId)
    expect(await code(created(node, { sandboxId: r.sandboxId }))).toBe('already_exists')
    expect(await code(node.resume(r.sandboxId, {}, { rpcUrl: undefined }))).toBe('not_found')
    expect(await code(node.kill(r.sandboxId))).toBe('not_found')
    gate.open()
    await node.teardownsSettled()
    expect((await created(node, { sandboxId: r.sandboxId })).sandboxId).toBe(r.sandboxId)
  })

  it('a create that finds no address free waits for the teardowns, then gets the freed one', async () => {
    // A /28: three addresses.
    const { host, node } = setup({}, '10.99.0.0/28')
    const first = await Promise.all([created(node), created(node), created(node)])
    expect(node.info().addressesFree).toBe(0)
    const gate = barrier()
    host.on('destroy', () => gate.wait)
    await node.kill(first[0]!.sandboxId)
    const next = newSandboxId()
    const creating = created(node, { sandboxId: next })
    // The create waits: neither refused nor started on an address still in use.
    await new Promise((r) => setTimeout(r, 20))
    expect(host.calls).not.toContain(`create ${next}`)
    gate.open()
    const r = await creating
    expect(r.slotIndex).toBe(first[0]!.slotIndex)
    expect(host.calls.indexOf(`destroy ${first[0]!.sandboxId}`)).toBeLessThan(
      host.calls.indexOf(`create ${next}`),
    )
  })

  it('runs at most two teardowns at once', async () => {
    const { host, node } = setup()
    const made = await Promise.all(Array.from({ length: 5 }, () => created(node)))
    let running = 0
    let most = 0
    for (let i = 0; i < 5; i++)
      host.on('destroy', async () => {
        most = Math.max(most, ++running)
        await new Promise((r) => setTimeout(r, 5))
        running--
      })
    await Promise.all(made.map((r) => node.kill(r.sandboxId)))
    expect(node.pendingTeardowns()).toBe(5)
    await node.teardownsSettled()
    expect(most).toBe(2)
    expect(host.slotsInUse.size).toBe(0)
  })

  it('a node that stops finishes its teardowns first', async () => {
    const { host, node } = setup()
    const r = await created(node)
    const gate = barrier()
    host.on('destroy', () => gate.wait)
    await node.kill(r.sandboxId)
    let stopped = false
    const stopping = node.stop().then(() => {
      stopped = true
    })
    await new Promise((r) => setTimeout(r, 20))
    expect(stopped).toBe(false)
    gate.open()
    await stopping
    expect(host.records.size).toBe(0)
  })

  it('a failed teardown is logged, not thrown; what it left stays for the next start', async () => {
    const { host, node } = setup()
    const r = await created(node)
    host.failNext('destroy')
    await node.kill(r.sandboxId)
    await node.teardownsSettled()
    expect(node.pendingTeardowns()).toBe(0)
    expect(host.records.has(r.sandboxId)).toBe(true)
    expect(host.tearingDown.has(r.sandboxId)).toBe(true)
  })
})

describe('a kill that cannot answer early', () => {
  it('tears a gVisor sandbox down before it answers', async () => {
    const { host, node } = setup()
    const r = await created(node, { isolation: 'gvisor' })
    const gate = barrier()
    host.on('destroy', () => gate.wait)
    let killed = false
    const killing = node.kill(r.sandboxId).then(() => {
      killed = true
    })
    await new Promise((r) => setTimeout(r, 20))
    expect(killed).toBe(false)
    gate.open()
    await killing
    expect(node.pendingTeardowns()).toBe(0)
    expect(host.slotsInUse.size).toBe(0)
  })

  it('tears down before it answers when the cut-off fails', async () => {
    const { host, node } = setup()
    const r = await created(node)
    host.failNext('cutOff')
    await node.kill(r.sandboxId)
    expect(node.pendingTeardowns()).toBe(0)
    expect(host.slotsInUse.size).toBe(0)
    expect(host.calls.slice(-2)).toEqual([`cutOff ${r.sandboxId}`, `destroy ${r.sandboxId}`])
  })
})
