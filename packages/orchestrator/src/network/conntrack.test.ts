import { parseNetworkConfig } from '@warren/shared'
import { describe, expect, it } from 'vitest'
import { deniedDestinations, parseFlows } from './conntrack.js'

describe('parseFlows', () => {
  it('reads the original tuple and the reply source of tcp and udp entries', () => {
    const text = [
      'tcp      6 431999 ESTABLISHED src=10.11.0.6 dst=198.51.100.10 sport=44322 dport=80 src=198.51.100.10 dst=10.11.0.6 sport=80 dport=44322 [ASSURED] mark=0 use=1',
      'udp      17 29 src=10.11.0.6 dst=198.51.100.20 sport=5000 dport=7 [UNREPLIED] src=198.51.100.20 dst=10.11.0.6 sport=7 dport=5000 mark=0 use=1',
      'icmp     1 29 src=10.11.0.6 dst=198.51.100.20 type=8 code=0 id=1',
      // Redirected to the egress proxy on the gateway: the reply comes from there.
      'tcp      6 431999 ESTABLISHED src=10.11.0.6 dst=198.51.100.11 sport=44324 dport=443 src=10.11.0.5 dst=10.11.0.6 sport=5443 dport=44324 [ASSURED] mark=0 use=1',
      'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.',
    ].join('\n')
    expect(parseFlows(text)).toEqual([
      {
        proto: 'tcp',
        state: 'ESTABLISHED',
        src: '10.11.0.6',
        dst: '198.51.100.10',
        sport: '44322',
        dport: '80',
        replySrc: '198.51.100.10',
      },
      {
        proto: 'udp',
        state: '',
        src: '10.11.0.6',
        dst: '198.51.100.20',
        sport: '5000',
        dport: '7',
        replySrc: '198.51.100.20',
      },
      {
        proto: 'tcp',
        state: 'ESTABLISHED',
        src: '10.11.0.6',
        dst: '198.51.100.11',
        sport: '44324',
        dport: '443',
        replySrc: '10.11.0.5',
      },
    ])
  })
})

describe('deniedDestinations', () => {
  const SBX = '10.11.0.6'
  const GW = '10.11.0.5'
  const flow = (dst: string, more: Partial<ReturnType<typeof parseFlows>[number]> = {}) => ({
    proto: 'tcp',
    state: 'ESTABLISHED',
    src: SBX,
    dst,
    sport: '40000',
    dport: '80',
    replySrc: dst,
    ...more,
  })
  const policy = parseNetworkConfig({
    allowOut: ['203.0.113.10', 'allowed.test'],
    denyOut: ['0.0.0.0/0'],
  }).egress

  it('names each denied destination once, per protocol', () => {
    const flows = [
      flow('203.0.113.20'),
      flow('203.0.113.20', { sport: '40001' }),
      flow('203.0.113.20', { proto: 'udp', state: '' }),
      flow('203.0.113.10'), // allowed by address
      flow('172.31.0.1'), // always denied
    ]
    expect(deniedDestinations(flows, SBX, GW, policy)).toEqual([
      { proto: 'tcp', dst: '203.0.113.20' },
      { proto: 'udp', dst: '203.0.113.20' },
      { proto: 'tcp', dst: '172.31.0.1' },
    ])
  })

  it("leaves Warren's own flows, inbound flows and dead entries alone", () => {
    const flows = [
      flow(GW, { dport: '53', proto: 'udp', state: '' }), // DNS on the gateway
      flow('198.51.100.10', { dport: '443', replySrc: GW }), // redirected to the egress proxy
      flow(SBX, { src: GW }), // the node proxy, inbound
      flow('203.0.113.20', { state: 'TIME_WAIT' }),
      flow('203.0.113.21', { state: 'CLOSE' }),
    ]
    expect(deniedDestinations(flows, SBX, GW, policy)).toEqual([])
  })

  it('without rules, only the always-denied ranges', () => {
    expect(
      deniedDestinations([flow('203.0.113.20'), flow('10.0.0.1')], SBX, GW, undefined),
    ).toEqual([{ proto: 'tcp', dst: '10.0.0.1' }])
  })
})
