import { describe, expect, it } from 'vitest'
import { code, created, setup } from '../testing/node-setup.js'

// A sandbox whose container dies on its own, over the in-memory host: the
// watcher's tick finds it, the node reports it until it is killed, and
// nothing but a kill is done to it meanwhile.

/** Lets the watcher's lookups and confirmations (promises) settle. */
const settle = () => new Promise((r) => setTimeout(r, 10))

async function tick(node: ReturnType<typeof setup>['node']) {
  node.exits.tick()
  await settle()
}

describe('exit watch', () => {
  it('reports a running sandbox whose container died, once, until it is killed', async () => {
    const { host, node } = setup()
    const heard: string[] = []
    node.exits.onExit((id) => heard.push(id))
    const r = await created(node)
    const alive = await created(node)
    await tick(node) // finds the first processes
    await tick(node)
    expect(node.exits.list()).toEqual([])
    host.containers.set(r.sandboxId, 'gone')
    await tick(node)
    await tick(node)
    expect(heard).toEqual([r.sandboxId])
    expect(node.exits.list()).toEqual([
      { sandboxId: r.sandboxId, at: expect.any(String), detail: expect.any(String), oom: false },
    ])
    expect(node.exits.of(alive.sandboxId)).toBeUndefined()
    // Only a kill: pause and network updates are refused.
    expect(await code(node.pause(r.sandboxId, { memory: true }))).toBe('conflict')
    expect(await code(node.updateNetwork(r.sandboxId, {}, null))).toBe('conflict')
    await node.kill(r.sandboxId)
    expect(node.exits.list()).toEqual([])
    expect(node.info().memoryMbAllocated).toBe(512)
  })

  it('does not take a paused sandbox (its container stopped on purpose) for a dead one', async () => {
    const { node } = setup()
    const r = await created(node)
    await tick(node)
    await node.pause(r.sandboxId, { memory: false })
    await tick(node)
    await tick(node)
    expect(node.exits.list()).toEqual([])
    // Resumed, it is watched again and still alive.
    await node.resume(r.sandboxId, {})
    await tick(node)
    await tick(node)
    expect(node.exits.list()).toEqual([])
  })
})
