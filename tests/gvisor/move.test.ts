// A paused gVisor sandbox moves to another node with its processes: a
// counter that holds its count only in memory goes on counting after the
// sandbox, hot-paused on a node that is then drained, resumes on the other
// node (pulled from its origin: its files and its checkpoint, each checked
// by its hash). Two orchestrator nodes (separate processes, TLS) behind one
// API on a private PostgreSQL. Privileged: root, runsc, runc, ip, nft.
import { Sandbox } from 'e2b'
import { expect, it } from 'vitest'
import { api, eventually } from '../helpers/api-client.js'
import { type ClusterNode, useCluster } from '../helpers/cluster-fixture.js'
import { COUNTER, continues, count } from './counter.js'

const cluster = useCluster({ nodes: 2, postgres: true })

const node = (i: number): ClusterNode => cluster().nodes[i]!

const setSchedulable = (n: ClusterNode, schedulable: string) =>
  cluster().nodeService.setSchedulable({ nodeId: n.nodeId, schedulable })

it('a paused gVisor sandbox resumes on another node with its processes', async () => {
  const origin = node(1)
  await setSchedulable(node(0), 'cordoned')
  let id: string
  try {
    const res = await api(cluster(), 'POST', '/v2/sandboxes', {
      json: { templateID: 'base', timeout: 600, isolation: 'gvisor' },
    })
    expect(res.status, res.text).toBe(201)
    id = (res.body as { sandboxID: string }).sandboxID
  } finally {
    await setSchedulable(node(0), 'active')
  }
  try {
    expect(await cluster().nodeOf(id)).toBe(origin.nodeId)
    const sbx = await Sandbox.connect(id, cluster().sdk)
    await (await sbx.commands.run(COUNTER, { background: true })).disconnect()
    await eventually('the counter counts', async () => (await count(sbx).catch(() => 0)) > 10)
    const paused = await api(cluster(), 'POST', `/sandboxes/${id}/pause`, { json: {} })
    expect(paused.status, paused.text).toBe(204)
    const before = await count(sbx).catch(() => undefined)
    expect(before, 'a paused sandbox answers no command').toBeUndefined()

    await setSchedulable(origin, 'draining')
    const resumed = await api(cluster(), 'POST', `/v2/sandboxes/${id}/connect`, {
      json: { timeout: 600 },
    })
    expect(resumed.status, resumed.text).toBe(201)
    expect((resumed.body as { resumedFrom?: string }).resumedFrom).toBe('memory')
    expect(await cluster().nodeOf(id)).toBe(node(0).nodeId)
    // Counted on from where it was frozen: more than 10, not 1 again.
    await continues(await Sandbox.connect(id, cluster().sdk), 11)
    // The origin's copy goes once the move is done.
    await eventually(
      'the drained node holds nothing',
      async () => (await origin.rpc.list({})).sandboxes.length === 0,
    )
  } finally {
    await setSchedulable(origin, 'active')
    await api(cluster(), 'DELETE', `/sandboxes/${id}`)
  }
})
