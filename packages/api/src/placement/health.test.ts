import { create } from '@bufbuild/protobuf'
import { NodeStatusSchema } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type InProcessApi, startInProcessApi } from '../testing/in-process.js'
import { StandInNode } from '../testing/stand-in-node.js'
import { startNodeHealth } from './health.js'
import { Placement } from './nodes.js'

// Nodes as the API judges them: registration by heartbeat, placement over
// healthy active nodes, health by silence, and what a lost node's sandboxes
// become. The clock is the test's; nodes are stand-ins.

const log = pino({ level: 'silent' })
/** Heartbeats with the API's own secret. */
const OWN = { cluster: null, secret: 'health-test-cluster-secret' }

function status(nodeId: string, over: Partial<Parameters<typeof create>[1]> = {}) {
  return create(NodeStatusSchema, {
    nodeId,
    cluster: 'default',
    instanceId: 'one',
    rpcUrl: `http://${nodeId}.invalid:5008`,
    proxyUrl: `http://${nodeId}.invalid:5007`,
    cpuCount: 4,
    memoryMbTotal: 8192n,
    memoryMbAllocated: 0n,
    templates: ['base'],
    ...over,
  })
}

describe('placement', () => {
  it('registers nodes by heartbeat and places on healthy, active ones, emptiest first', () => {
    const now = { ms: 1000 }
    const p = new Placement(
      log,
      () => new StandInNode().transport,
      () => now.ms,
    )
    p.heartbeat(status('a', { memoryMbAllocated: 4096n }), OWN)
    p.heartbeat(status('b', { memoryMbAllocated: 1024n }), OWN)
    p.heartbeat(status('c', { memoryMbAllocated: 0n, templates: ['other'] }), OWN)
    expect(
      p.candidates(0, undefined, { templateId: 'base', cluster: null }).map((n) => n.nodeId),
    ).toEqual(['b', 'a'])
    // Without a node holding the template, every fitting node (its answer says what is missing).
    expect(
      p.candidates(0, undefined, { templateId: 'nowhere', cluster: null }).map((n) => n.nodeId),
    ).toEqual(['c', 'b', 'a'])
    expect(p.candidates(5000, undefined, { cluster: null }).map((n) => n.nodeId)).toEqual([
      'c',
      'b',
    ])
    p.setSchedulable('b', 'cordoned')
    expect(
      p.candidates(0, undefined, { templateId: 'base', cluster: null }).map((n) => n.nodeId),
    ).toEqual(['a'])
    p.setSchedulable('b', 'active')
    p.node('a').healthy = false
    expect(
      p.candidates(0, undefined, { templateId: 'base', cluster: null }).map((n) => n.nodeId),
    ).toEqual(['b'])
    expect(() => p.setSchedulable('zz', 'cordoned')).toThrow(/not found/)
    expect(() => p.heartbeat(status('', {}), OWN)).toThrow(/node id/)
  })

  it('spreads concurrent creates: one under way counts against its node', async () => {
    const nodes = [new StandInNode('n1'), new StandInNode('n2')]
    const api = await startInProcessApi({ nodes })
    try {
      const gates = nodes.map((n) => n.hold('create'))
      const first = api.create({ templateID: 'base', timeout: 300 })
      await Promise.race(gates.map((g) => g.entered))
      // The first is held on its node; the second must not join it there
      // (that node's next create would not be held, and would finish first).
      const second = api.create({ templateID: 'base', timeout: 300 })
      const bothHeld = Promise.all(gates.map((g) => g.entered)).then(() => 'both held')
      expect(await Promise.race([bothHeld, second.then(() => 'second on the same node')])).toBe(
        'both held',
      )
      for (const g of gates) g.release()
      await Promise.all([first, second])
      expect(nodes.map((n) => n.sandboxes.size)).toEqual([1, 1])
    } finally {
      await api.close()
    }
  })

  it('refuses a heartbeat for a node it polls', async () => {
    const p = new Placement(log, () => new StandInNode().transport)
    const polled = new StandInNode()
    await p.register(polled.transport)
    expect(() => p.heartbeat(status(polled.nodeId), OWN)).toThrow(/polled/)
  })
})

describe('node health', () => {
  let api: InProcessApi
  beforeEach(async () => {
    api = await startInProcessApi()
  })
  afterEach(() => api.close())

  /** Placement and its health loop on the test's clock; passes run only when the test asks. */
  function manualHealth() {
    const now = { ms: 0 }
    const p = new Placement(
      log,
      () => api.node.transport,
      () => now.ms,
    )
    const lost: string[] = []
    const health = startNodeHealth({
      placement: p,
      unhealthyAfterMs: 2000,
      lostAfterMs: 6000,
      intervalMs: 60_000,
      now: () => now.ms,
      log,
      onLost: async (n) => {
        lost.push(n.nodeId)
      },
    })
    health.stop()
    return { now, p, lost, health }
  }

  it('unhealthy after the first limit, lost after the grace period: sandboxes become node_lost', async () => {
    const { now, p, lost, health } = manualHealth()
    p.heartbeat(status('r'), OWN)
    now.ms = 1500
    await health.runOnce()
    expect(p.node('r')).toMatchObject({ healthy: true, lost: false })
    now.ms = 2500
    await health.runOnce()
    expect(p.node('r')).toMatchObject({ healthy: false, lost: false })
    expect(p.candidates(0, undefined, { cluster: null })).toEqual([])
    expect(lost).toEqual([])
    now.ms = 6500
    await health.runOnce()
    expect(p.node('r')).toMatchObject({ healthy: false, lost: true })
    expect(lost).toEqual(['r'])
    // Back: healthy again.
    p.heartbeat(status('r', { instanceId: 'two' }), OWN)
    expect(p.node('r')).toMatchObject({ healthy: true, lost: false })
  })

  it('gives a node the store knows but that has not registered its grace period, then takes its heartbeat', async () => {
    const { now, p, lost, health } = manualHealth()
    const waiting = p.awaitRegistration('later', null)
    expect(waiting.healthy).toBe(false)
    await expect(waiting.client.list({})).rejects.toMatchObject({ code: 'unavailable' })
    now.ms = 5000
    await health.runOnce()
    expect(lost).toEqual([])
    p.heartbeat(status('later'), OWN)
    expect(p.candidates(0, undefined, { cluster: null }).map((n) => n.nodeId)).toEqual(['later'])
    expect((await p.node('later').client.list({})).sandboxes).toEqual([])
  })

  it("reports a lost node's running and paused sandboxes killed (node_lost), once each", async () => {
    const running = await api.create({ templateID: 'base', timeout: 300 })
    const paused = await api.create({ templateID: 'base', timeout: 300 })
    expect((await api.request('POST', `/sandboxes/${paused}/pause`, { json: {} })).status).toBe(204)
    const nodeId = api.node.nodeId
    expect(await api.engine.reportNodeLost(nodeId)).toBe(2)
    expect(await api.row(running)).toMatchObject({ state: 'killed', killReason: 'node_lost' })
    expect(await api.row(paused)).toMatchObject({ state: 'killed', killReason: 'node_lost' })
    expect(await api.engine.reportNodeLost(nodeId)).toBe(0)
    expect((await api.request('GET', `/sandboxes/${running}`)).status).toBe(404)
  })

  it('kills an exited sandbox with its reason, and ignores a report for another node', async () => {
    const a = await api.create({ templateID: 'base', timeout: 300 })
    const b = await api.create({ templateID: 'base', timeout: 300 })
    await api.engine.killExited('elsewhere', a, 'gone', false)
    expect((await api.row(a)).state).toBe('running')
    await api.engine.killExited(api.node.nodeId, a, 'gone', false)
    await api.engine.killExited(api.node.nodeId, b, 'oom', true)
    expect(await api.row(a)).toMatchObject({ state: 'killed', killReason: 'exited' })
    expect(await api.row(b)).toMatchObject({ state: 'killed', killReason: 'oom_killed' })
    expect(
      api.node
        .callsOf('kill')
        .map((c) => c.sandboxId)
        .sort(),
    ).toEqual([a, b].sort())
  })
})
