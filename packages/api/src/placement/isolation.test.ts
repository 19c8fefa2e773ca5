// Isolation choice through the API, in process: placement only on nodes that
// offer it, never a silent runc; GET says which one a sandbox has.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type InProcessApi, startInProcessApi } from '../testing/in-process.js'
import { StandInNode } from '../testing/stand-in-node.js'
import { isolationUnavailable, type NodeState } from './nodes.js'

describe('isolation', () => {
  let api: InProcessApi
  const runcOnly = new StandInNode('node-runc')
  const withGvisor = new StandInNode('node-gvisor')
  withGvisor.isolations = ['runc', 'gvisor']

  beforeAll(async () => {
    api = await startInProcessApi({ nodes: [runcOnly, withGvisor] })
  })
  afterAll(() => api.close())

  it('places a gvisor sandbox only on a node that offers it and reports it', async () => {
    for (let i = 0; i < 3; i++) {
      const id = await api.create({ templateID: 'base', isolation: 'gvisor' })
      expect((await api.row(id)).nodeId).toBe('node-gvisor')
      const got = await api.request('GET', `/sandboxes/${id}`)
      expect(got.status).toBe(200)
      expect((got.body as { isolation: string }).isolation).toBe('gvisor')
    }
  })

  it('forks of a gvisor sandbox are gvisor sandboxes', async () => {
    const id = await api.create({ templateID: 'base', isolation: 'gvisor' })
    const res = await api.request('POST', `/sandboxes/${id}/fork`, { json: { count: 2 } })
    expect(res.status, res.text).toBe(201)
    const forks = res.body as Array<{ sandbox: { sandboxID: string } }>
    expect(forks).toHaveLength(2)
    for (const { sandbox: f } of forks) {
      expect((await api.row(f.sandboxID)).nodeId).toBe('node-gvisor')
      const got = await api.request('GET', `/sandboxes/${f.sandboxID}`)
      expect((got.body as { isolation: string }).isolation).toBe('gvisor')
    }
  })

  it('defaults to runc', async () => {
    const id = await api.create({ templateID: 'base' })
    const got = await api.request('GET', `/sandboxes/${id}`)
    expect((got.body as { isolation: string }).isolation).toBe('runc')
  })
})

describe('isolationUnavailable', () => {
  const node = (isolations: string[] | undefined, healthy = true) =>
    ({ nodeId: 'n', healthy, isolations }) as NodeState
  // biome-ignore format: a table reads best one case per line
  const cases: Array<[string, NodeState[], string]> = [
    ['no node offers it', [node(['runc']), node(['runc'], false)], 'invalid_argument'],
    ['the node offering it is down', [node(['runc']), node(['runc', 'gvisor'], false)], 'unavailable'],
    ['a node has not said yet', [node(['runc']), node(undefined, false)], 'unavailable'],
  ]
  it.each(cases)('%s', (_, nodes, code) => {
    expect(isolationUnavailable(nodes, 'gvisor').code).toBe(code)
  })
})
