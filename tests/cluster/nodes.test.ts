// Two real orchestrator nodes (separate processes, own prefixes, pools,
// ports and data directories) behind one API process and one edge proxy,
// all over TLS with the cluster secret: registration, placement, cordon and
// drain, sandboxes that die on their own, and a node that dies.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { api, eventually } from '../helpers/api-client.js'
import { CLI } from '../helpers/cli.js'
import { useCluster } from '../helpers/cluster-fixture.js'
import { sandboxCgroup } from '../helpers/node-fixture.js'
import { teardownWarrenHost, warrenSetup } from '../helpers/warren-fixture.js'

const cluster = useCluster({ nodes: 2 })

async function create(body: Record<string, unknown> = {}): Promise<string> {
  const res = await api(cluster(), 'POST', '/v2/sandboxes', {
    json: { templateID: 'base', timeout: 300, memoryMB: 256, ...body },
  })
  expect(res.status, res.text).toBe(201)
  return (res.body as { sandboxID: string }).sandboxID
}

async function placements(ids: string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (const id of ids) {
    const node = (await cluster().nodeOf(id)) ?? 'nowhere'
    counts[node] = (counts[node] ?? 0) + 1
  }
  return counts
}

async function killReason(sandboxId: string): Promise<string | undefined> {
  const { route } = await cluster().proxyService.getRoute({ sandboxId })
  return route?.killReason || undefined
}

async function waitForKillReason(sandboxId: string, reason: string, ms = 20_000) {
  await eventually(
    `${sandboxId} killed (${reason})`,
    async () => (await killReason(sandboxId)) === reason,
    ms,
    200,
  )
}

async function killAll(ids: string[]) {
  for (const id of ids) await api(cluster(), 'DELETE', `/sandboxes/${id}`)
}

/** The pid (on the host) of a sandbox's first process: the one that is pid 1 in its namespace. */
function initPid(prefix: string, sandboxId: string): number {
  const procs = readFileSync(join(sandboxCgroup(prefix, sandboxId, 'pids'), 'cgroup.procs'), 'utf8')
    .split('\n')
    .filter(Boolean)
  for (const pid of procs) {
    const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    if (nspid?.trim().split(/\s+/).at(-1) === '1') return Number(pid)
  }
  throw new Error(`no init process for ${sandboxId} among ${procs.join(' ')}`)
}

describe('nodes register themselves', () => {
  it('with their address, capacity, templates and version, and heartbeat', async () => {
    const { nodes } = await cluster().nodeService.listNodes({})
    expect(nodes.map((n) => n.nodeId).sort()).toEqual(
      cluster()
        .nodes.map((n) => n.nodeId)
        .sort(),
    )
    for (const n of nodes) {
      const mine = cluster().nodes.find((c) => c.nodeId === n.nodeId)!
      expect(n).toMatchObject({
        source: 'registered',
        health: 'healthy',
        schedulable: 'active',
        rpcUrl: mine.rpcUrl,
        proxyUrl: mine.proxyUrl,
      })
      expect(n.templates).toContain('base')
      expect(n.version).toMatch(/^\d+\.\d+\.\d+/)
      expect(Number(n.memoryMbTotal)).toBeGreaterThan(0)
      expect(n.cpuCount).toBeGreaterThan(0)
    }
  })
})

describe('placement', () => {
  it('spreads sandboxes over the healthy nodes by free memory', async () => {
    const ids: string[] = []
    for (let i = 0; i < 4; i++) ids.push(await create())
    const counts = await placements(ids)
    expect(counts).toEqual({
      [cluster().nodes[0]!.nodeId]: 2,
      [cluster().nodes[1]!.nodeId]: 2,
    })
    // Traffic reaches sandboxes on both nodes through the one edge (edge → node proxy over TLS).
    for (const id of ids) {
      const sbx = await Sandbox.connect(id, { ...cluster().sdk })
      expect((await sbx.commands.run('echo hi')).stdout).toBe('hi\n')
    }
    await killAll(ids)
  })

  it('a cordoned node gets no new sandboxes; uncordoned, it does again', async () => {
    const [a, b] = cluster().nodes
    const cordoned = await cluster().nodeService.setSchedulable({
      nodeId: a!.nodeId,
      schedulable: 'cordoned',
    })
    expect(cordoned.node?.schedulable).toBe('cordoned')
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push(await create())
    expect(await placements(ids)).toEqual({ [b!.nodeId]: 3 })
    await cluster().nodeService.setSchedulable({ nodeId: a!.nodeId, schedulable: 'active' })
    const next = await create()
    // a is the emptier node now.
    expect(await cluster().nodeOf(next)).toBe(a!.nodeId)
    await killAll([...ids, next])
  })

  it('a drained node has its running sandboxes paused (to resume elsewhere) and gets no new ones', async () => {
    const [a, b] = cluster().nodes
    const ids: string[] = []
    for (let i = 0; i < 4; i++) ids.push(await create())
    const where = new Map<string, string | undefined>()
    for (const id of ids) where.set(id, await cluster().nodeOf(id))
    const drained = await cluster().nodeService.setSchedulable({
      nodeId: a!.nodeId,
      schedulable: 'draining',
    })
    expect(drained.paused).toBe([...where.values()].filter((n) => n === a!.nodeId).length)
    expect(drained.paused).toBeGreaterThan(0)
    expect(drained.killed).toBe(0)
    for (const [id, node] of where) {
      const res = await api(cluster(), 'GET', `/sandboxes/${id}`)
      expect(res.body).toMatchObject({ state: node === a!.nodeId ? 'paused' : 'running' })
    }
    const next = await create()
    expect(await cluster().nodeOf(next)).toBe(b!.nodeId)
    await cluster().nodeService.setSchedulable({ nodeId: a!.nodeId, schedulable: 'active' })
    await killAll([...ids, next])
  })
})

describe('a sandbox that dies on its own', () => {
  it('is reported within seconds when its first process exits (reason exited)', async () => {
    const id = await create()
    const owner = await cluster().nodeOf(id)
    const prefix = cluster().nodes.find((n) => n.nodeId === owner)!.setup.prefix
    process.kill(initPid(prefix, id), 'SIGKILL')
    await waitForKillReason(id, 'exited')
    // Killed on its node too: nothing of it is left there.
    const rpc = cluster().nodes.find((n) => n.nodeId === owner)!.rpc
    await eventually('gone from its node', async () =>
      (await rpc.list({})).sandboxes.every((s) => s.sandboxId !== id),
    )
  })

  it('is reported within seconds when the kernel OOM-kills it (reason oom_killed)', async () => {
    const id = await create({ memoryMB: 128 })
    const owner = await cluster().nodeOf(id)
    const prefix = cluster().nodes.find((n) => n.nodeId === owner)!.setup.prefix
    // The kernel's pick when the sandbox's memory runs out is its first
    // process (whose death takes every process of its namespace with it),
    // and with cgroup v2 the whole group goes anyway.
    const cgroup = sandboxCgroup(prefix, id, 'memory')
    if (readdirSync(cgroup).includes('memory.oom.group'))
      writeFileSync(join(cgroup, 'memory.oom.group'), '1')
    writeFileSync(`/proc/${initPid(prefix, id)}/oom_score_adj`, '1000')
    const sbx = await Sandbox.connect(id, { ...cluster().sdk })
    // `tail` holds a line of 400 MB of zeros in memory: more than the sandbox has.
    await sbx.commands
      .run('head -c 400000000 /dev/zero | tail > /dev/null', { timeoutMs: 30_000 })
      .catch(() => {})
    await waitForKillReason(id, 'oom_killed')
  })
})

describe('nodes on one machine', () => {
  it("a node whose pool overlaps a running node's, or whose prefix one uses, is refused at start", async () => {
    const [a] = cluster().nodes
    const setup = await warrenSetup('cluster-refused')
    try {
      const start = (over: Record<string, string>) =>
        spawnSync(process.execPath, [CLI, 'orchestrator'], {
          env: { ...process.env, ...setup.env, WARREN_CLUSTER_SECRET: cluster().secret, ...over },
          encoding: 'utf8',
          timeout: 60_000,
        })
      // Node a has no sandbox now (the earlier tests' last kills are done):
      // nothing on the host shows its pool, its claim does.
      await eventually(
        'node a has no sandbox',
        async () => (await a!.rpc.list({})).sandboxes.length === 0,
      )
      const overlapping = start({ WARREN_ADDRESS_POOL: a!.setup.pool })
      expect(overlapping.status).not.toBe(0)
      expect(overlapping.stderr).toMatch(/address pool .* overlaps .* of node/)
      const samePrefix = start({ WARREN_NODE_PREFIX: a!.setup.prefix })
      expect(samePrefix.status).not.toBe(0)
      expect(samePrefix.stderr).toMatch(/node prefix .* is in use by another node/)
      // Node a runs on, untouched.
      const id = await create()
      expect(await cluster().nodeOf(id)).toBeDefined()
      await killAll([id])
    } finally {
      await teardownWarrenHost(setup)
    }
  })
})

describe('a node that dies', () => {
  it('is unhealthy, then lost: its sandboxes are reported node_lost and creates go elsewhere', async () => {
    const [a, b] = cluster().nodes
    const ids: string[] = []
    for (let i = 0; i < 2; i++) ids.push(await create())
    const lostIds: string[] = []
    for (const id of ids) if ((await cluster().nodeOf(id)) === b!.nodeId) lostIds.push(id)
    expect(lostIds.length).toBeGreaterThan(0)
    await b!.kill()
    await eventually(
      'b unhealthy',
      async () =>
        (await cluster().nodeService.listNodes({})).nodes.find((n) => n.nodeId === b!.nodeId)
          ?.health !== 'healthy',
      10_000,
      100,
    )
    // Unhealthy, it gets nothing new.
    const next = await create()
    expect(await cluster().nodeOf(next)).toBe(a!.nodeId)
    // Still running in the store until the grace period ends…
    for (const id of lostIds) expect(await killReason(id)).toBeUndefined()
    for (const id of lostIds) await waitForKillReason(id, 'node_lost')
    expect(
      (await cluster().nodeService.listNodes({})).nodes.find((n) => n.nodeId === b!.nodeId)?.health,
    ).toBe('lost')
    const after = await create()
    expect(await cluster().nodeOf(after)).toBe(a!.nodeId)
    await killAll([...ids, next, after])
  })
})
