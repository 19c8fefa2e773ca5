// A kill answers once the sandbox is stopped and unreachable; its teardown
// (container, mounts, network, files) follows in the background. Privileged:
// runc, netns, nftables. Traffic only to the sandboxes' own addresses.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ENVD_PORT } from '@warren/shared'
import { afterEach, expect, it } from 'vitest'
import {
  assertNoLeftovers,
  type NodeFixture,
  sandboxCgroup,
  startNodeFixture,
  uniquePool,
} from '../helpers/node-fixture.js'
import { hostGet, sh } from './helpers.js'

const nodes: NodeFixture[] = []
afterEach(async (ctx) => {
  const failed = ctx.task.result?.state === 'fail'
  const errors: unknown[] = []
  for (const f of nodes.splice(0)) {
    if (failed) console.error(`[${f.prefix}] sandboxes created: ${f.created.join(' ') || '-'}`)
    await f.teardown().catch((err) => errors.push(err))
  }
  if (errors.length) throw new AggregateError(errors, 'teardown failed')
})

/** A node with no warm slots (every namespace is a sandbox's) and `pool` for addresses. */
async function startNode(pool = uniquePool()) {
  const f = await startNodeFixture({ config: { warmNetworkSlots: 0, addressPool: pool } })
  nodes.push(f)
  return f
}

function processesOf(f: NodeFixture, sandboxId: string): string[] {
  const procs = join(sandboxCgroup(f.prefix, sandboxId, 'pids'), 'cgroup.procs')
  return existsSync(procs) ? readFileSync(procs, 'utf8').split('\n').filter(Boolean) : []
}

it('answers with every process dead and envd unreachable, then removes the rest', async () => {
  const f = await startNode()
  const r = await f.create()
  await sh(f.sdk(r), 'sleep 300 >/dev/null 2>&1 & sleep 301 >/dev/null 2>&1 & true')
  expect(processesOf(f, r.sandboxId).length).toBeGreaterThan(2)
  const dir = join(f.dataDir, 'sandboxes', r.sandboxId)
  await f.node.kill(r.sandboxId)
  // Answered before the teardown: its mark is there, its directory too.
  expect(existsSync(join(dir, 'tearing-down'))).toBe(true)
  expect(f.node.pendingTeardowns()).toBe(1)
  expect(processesOf(f, r.sandboxId)).toEqual([])
  expect(await hostGet(`http://${r.sandboxIp}:${ENVD_PORT}/health`)).not.toBe(204)
  expect(() => f.node.get(r.sandboxId)).toThrow(/not found/)
  expect(f.node.info().memoryMbAllocated).toBe(0)
  await f.node.teardownsSettled()
  expect(existsSync(dir)).toBe(false)
  await assertNoLeftovers(f.prefix, f.dataDir)
})

it("gives a killed sandbox's address to a new one only after its teardown", async () => {
  // A /28: three addresses, so every round's creates need the killed ones'.
  const f = await startNode(uniquePool(28))
  let live = await Promise.all([f.create(), f.create(), f.create()])
  let sawPending = 0
  for (let round = 0; round < 4; round++) {
    const killed = live
    await Promise.all(killed.map((r) => f.node.kill(r.sandboxId)))
    sawPending = Math.max(sawPending, f.node.pendingTeardowns())
    // Created at once, while the teardowns run: each waits for an address
    // rather than being refused or built on a namespace still in use.
    live = await Promise.all([f.create(), f.create(), f.create()])
    const ips = live.map((r) => r.sandboxIp)
    expect(new Set(ips).size).toBe(3)
    expect(ips.sort()).toEqual(killed.map((r) => r.sandboxIp).sort())
    // Each address now reaches its new sandbox (its token is refused by any other envd).
    for (const r of live)
      expect(await sh(f.sdk(r), 'echo $E2B_SANDBOX_ID')).toBe(`${r.sandboxId}\n`)
  }
  console.log(`teardowns pending right after a round of kills: up to ${sawPending}`)
  expect(sawPending).toBeGreaterThan(0)
  for (const r of live) await f.node.kill(r.sandboxId)
  await f.node.teardownsSettled()
  await assertNoLeftovers(f.prefix, f.dataDir)
})

it('kills a sandbox paused with its memory (frozen) as fast: its processes die, then nothing is left', async () => {
  const f = await startNode()
  const r = await f.create()
  await sh(f.sdk(r), 'sleep 300 >/dev/null 2>&1 & true')
  await f.node.pause(r.sandboxId, { memory: true })
  const freezer = join(sandboxCgroup(f.prefix, r.sandboxId, 'freezer'), 'freezer.state')
  if (existsSync(freezer)) expect(readFileSync(freezer, 'utf8').trim()).toBe('FROZEN')
  expect(processesOf(f, r.sandboxId).length).toBeGreaterThan(1)
  await f.node.kill(r.sandboxId)
  // Answered on the fast path (the thaw let the frozen processes die), not after a full teardown.
  expect(f.node.pendingTeardowns()).toBe(1)
  expect(processesOf(f, r.sandboxId)).toEqual([])
  await f.node.teardownsSettled()
  await assertNoLeftovers(f.prefix, f.dataDir)
})
