import { newSandboxId } from '@warren/shared'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { barrier } from '../testing/memory-host.js'
import { code, created, setup } from '../testing/node-setup.js'

// The warm pool over an in-memory host: what is claimed, what is refilled,
// what memory it holds, and that no warm sandbox is ever handed out twice.

/** Lets background work (refills, removals, the pool's 1 s check) run until `ok` or 5 s. */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(ok()).toBe(true)
}

function warmSetup(over: Parameters<typeof setup>[0] = {}) {
  const s = setup({ warmPool: { base: 2 }, ...over })
  return { ...s, ready: () => s.node.info().warm.base ?? 0 }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('warm pool', () => {
  it('fills to its size, counts its memory, and stays out of the list', async () => {
    const { host, node, ready } = warmSetup()
    await node.start()
    await until(() => ready() === 2)
    expect(host.warm.size).toBe(2)
    expect(node.info().memoryMbAllocated).toBe(1024)
    expect(node.info().sandboxes).toBe(0)
    expect(node.list()).toEqual([])
    await node.stop()
  })

  it('serves a create with its defaults from the pool, then refills', async () => {
    const { host, node, ready } = warmSetup()
    await node.start()
    await until(() => ready() === 2)
    const id = newSandboxId()
    const r = await node.create({ sandboxId: id, templateId: 'base' })
    expect(r.sandboxId).toBe(id)
    expect(r.hostName).toMatch(/^warm-/)
    expect(host.calls).not.toContain(`create ${id}`)
    expect(host.calls.filter((c) => c.startsWith('claimWarm'))).toEqual([
      `claimWarm ${r.hostName} ${id}`,
    ])
    expect(node.list().map((x) => x.sandboxId)).toEqual([id])
    await until(() => ready() === 2)
    // Two warm and one claimed: the claimed one's memory moved, nothing doubled.
    expect(node.info().memoryMbAllocated).toBe(3 * 512)
    await node.kill(id)
    expect(node.info().memoryMbAllocated).toBe(1024)
    await node.stop()
  })

  it('never hands one warm sandbox to two creates', async () => {
    const { host, node, ready } = warmSetup({ warmPool: { base: 3 } })
    await node.start()
    await until(() => ready() === 3)
    const records = await Promise.all(
      Array.from({ length: 8 }, () =>
        node.create({ sandboxId: newSandboxId(), templateId: 'base' }),
      ),
    )
    const claimed = records.map((r) => r.hostName).filter((n) => n !== undefined)
    expect(claimed.length).toBe(3)
    expect(new Set(claimed).size).toBe(3)
    expect(host.calls.filter((c) => c.startsWith('create ')).length).toBe(5)
    for (const r of records) await node.kill(r.sandboxId)
    await node.stop()
    expect(host.warm.size).toBe(0)
    expect(node.info().memoryMbAllocated).toBe(0)
  })

  it('destroys a warm sandbox whose claim failed and creates cold', async () => {
    const { host, node, ready } = warmSetup({ warmPool: { base: 1 } })
    await node.start()
    await until(() => ready() === 1)
    const [warm] = [...host.warm.keys()]
    host.failNext('claimWarm')
    const id = newSandboxId()
    const r = await node.create({ sandboxId: id, templateId: 'base' })
    expect(r.hostName).toBeUndefined()
    expect(host.calls).toContain(`create ${id}`)
    // Gone from the host and from the pool; the refill is a new one.
    expect(host.containers.has(warm!)).toBe(false)
    await until(() => ready() === 1)
    expect([...host.warm.keys()]).not.toContain(warm)
    expect(node.info().memoryMbAllocated).toBe(1024)
    await node.kill(id)
    await node.stop()
  })

  it('takes nothing for a create that differs from the defaults', async () => {
    const { host, node, ready } = warmSetup()
    await node.start()
    await until(() => ready() === 2)
    for (const over of [{ memoryMb: 1024 }, { cpuCount: 2 }, { diskSizeMb: 2048 }]) {
      const r = await created(node, { ...over, memoryMb: over.memoryMb ?? 512 })
      expect(r.hostName).toBeUndefined()
      await node.kill(r.sandboxId)
    }
    expect(ready()).toBe(2)
    expect(host.calls.some((c) => c.startsWith('claimWarm'))).toBe(false)
    await node.stop()
  })

  it('gives its memory to a create that needs the room', async () => {
    const { host, node, ready } = warmSetup({ memoryCapacityMb: 1536 })
    await node.start()
    await until(() => ready() === 2)
    // 1024 MB does not fit beside two warm sandboxes (1024 + 1024 > 1536): one goes.
    const r = await created(node, { memoryMb: 1024 })
    expect(node.info().memoryMbAllocated).toBe(1536)
    await until(() => host.calls.filter((c) => c.startsWith('destroyWarm')).length === 1)
    expect(ready()).toBe(1)
    // A create that would not fit even without the pool is refused, and the pool is kept.
    expect(await code(created(node, { memoryMb: 2048 }))).toBe('capacity_exhausted')
    expect(ready()).toBe(1)
    // One that fits once the last warm one goes, evicts it.
    const s = await created(node, { memoryMb: 512, cpuCount: 2 })
    expect(ready()).toBe(0)
    expect(node.info().memoryMbAllocated).toBe(1536)
    await node.kill(s.sandboxId)
    await until(() => ready() === 1)
    await node.kill(r.sandboxId)
    await node.stop()
  })

  it('shrinks a template nobody claims from, and grows back on demand', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] })
    const { node, ready } = warmSetup({ warmPoolIdleMs: 60_000 })
    await node.start()
    await until(() => ready() === 2)
    vi.advanceTimersByTime(61_000)
    await until(() => ready() === 1)
    vi.advanceTimersByTime(60_000)
    await until(() => ready() === 0)
    expect(node.info().memoryMbAllocated).toBe(0)
    // A create (served cold: the pool is empty) restores the full size.
    const r = await node.create({ sandboxId: newSandboxId(), templateId: 'base' })
    expect(r.hostName).toBeUndefined()
    await until(() => ready() === 2)
    await node.kill(r.sandboxId)
    await node.stop()
  })

  it('removes its warm sandboxes at stop, after those still booting', async () => {
    const { host, node } = warmSetup()
    const gate = barrier()
    host.on('startWarm', () => gate.wait)
    await node.start()
    const stopped = node.stop()
    gate.open()
    await stopped
    expect(host.warm.size).toBe(0)
    expect(host.slotsInUse.size).toBe(0)
    expect(node.info().memoryMbAllocated).toBe(0)
  })

  it('creates as without a pool when the pool is empty', async () => {
    const { host, node } = setup()
    await node.start()
    const r = await created(node)
    expect(host.calls).toEqual([`create ${r.sandboxId}`])
    expect(node.info().warm).toEqual({})
    await node.stop()
  })
})
