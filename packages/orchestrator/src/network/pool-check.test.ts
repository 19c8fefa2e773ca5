import { describe, expect, it } from 'vitest'
import { poolConflicts } from './pool-check.js'

const lo = { ifname: 'lo', addr_info: [{ local: '127.0.0.1', prefixlen: 8 }] }
const eth = { ifname: 'eth0', addr_info: [{ local: '192.0.2.2', prefixlen: 24 }] }
const base = [
  { dst: 'default', dev: 'eth0' },
  { dst: '192.0.2.0/24', dev: 'eth0' },
  { type: 'local', dst: '127.0.0.0/8', dev: 'lo' },
]

describe('poolConflicts', () => {
  it('finds nothing on a host that does not use the pool', () => {
    expect(poolConflicts('10.11.0.0/16', 'wr', [lo, eth], base)).toEqual([])
  })

  it("ignores the node's own veths, addresses and routes alike", () => {
    const veth = { ifname: 'wr-v3', addr_info: [{ local: '10.11.0.13', prefixlen: 30 }] }
    const routes = [
      ...base,
      { dst: '10.11.0.12/30', dev: 'wr-v3' },
      { type: 'local', dst: '10.11.0.13', dev: 'wr-v3' },
    ]
    expect(poolConflicts('10.11.0.0/16', 'wr', [lo, eth, veth], routes)).toEqual([])
  })

  it("reports another node's veths in the same pool", () => {
    const other = { ifname: 'wx-v0', addr_info: [{ local: '10.11.0.1', prefixlen: 30 }] }
    const routes = [...base, { dst: '10.11.0.0/30', dev: 'wx-v0' }]
    expect(poolConflicts('10.11.0.0/16', 'wr', [lo, eth, other], routes)).toEqual([
      'address 10.11.0.1/30 on wx-v0',
      'route 10.11.0.0/30 via wx-v0',
    ])
  })

  it('does not take a prefix that merely starts the same for its own', () => {
    const other = { ifname: 'wr2-v0', addr_info: [{ local: '10.11.0.1', prefixlen: 30 }] }
    expect(poolConflicts('10.11.0.0/16', 'wr', [other], [])).toHaveLength(1)
  })

  it('reports a host network that contains the pool, or that the pool contains', () => {
    expect(poolConflicts('10.11.0.0/16', 'wr', [lo], [{ dst: '10.0.0.0/8', dev: 'tun0' }])).toEqual(
      ['route 10.0.0.0/8 via tun0'],
    )
    expect(
      poolConflicts(
        '10.0.0.0/8',
        'wr',
        [{ ifname: 'docker0', addr_info: [{ local: '10.11.0.1', prefixlen: 16 }] }],
        [],
      ),
    ).toEqual(['address 10.11.0.1/16 on docker0'])
  })

  it('takes pools that only touch for disjoint', () => {
    expect(poolConflicts('10.11.0.0/16', 'wr', [], [{ dst: '10.12.0.0/16', dev: 'x' }])).toEqual([])
    expect(poolConflicts('10.11.0.0/16', 'wr', [], [{ dst: '10.10.255.255', dev: 'x' }])).toEqual(
      [],
    )
  })
})
