import { describe, expect, it } from 'vitest'
import { code, created, setup } from '../testing/node-setup.js'

// The node's side of the isolation choice, over an in-memory host: the
// record keeps it, an isolation the host does not offer is refused before
// anything is touched (never a silent runc), an unknown one is invalid.
describe('isolation on create', () => {
  it('records the isolation asked for; runc by default', async () => {
    const { node } = setup()
    expect((await created(node, { isolation: 'gvisor' })).isolation).toBe('gvisor')
    expect((await created(node)).isolation).toBe('runc')
    expect(node.info().isolations).toEqual(['runc', 'gvisor'])
  })

  // biome-ignore format: a table reads best one case per line
  const cases: Array<[string, string[], string, string]> = [
    ['gvisor on a node without runsc', ['runc'], 'gvisor', 'unavailable'],
    ['an unknown isolation', ['runc', 'gvisor'], 'kata', 'invalid_argument'],
    ['an empty one means runc', ['runc'], '', 'ok'],
  ]
  it.each(cases)('%s', async (_, offered, isolation, want) => {
    const { host, node } = setup()
    host.offered = offered as typeof host.offered
    expect(await code(created(node, { isolation }))).toBe(want)
    if (want !== 'ok') {
      expect(host.calls).toEqual([])
      expect(node.info().memoryMbAllocated).toBe(0)
    }
  })
})
