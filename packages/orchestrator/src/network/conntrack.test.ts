import { describe, expect, it } from 'vitest'
import { parseFlows } from './conntrack.js'

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
        src: '10.11.0.6',
        dst: '198.51.100.10',
        sport: '44322',
        dport: '80',
        replySrc: '198.51.100.10',
      },
      {
        proto: 'udp',
        src: '10.11.0.6',
        dst: '198.51.100.20',
        sport: '5000',
        dport: '7',
        replySrc: '198.51.100.20',
      },
      {
        proto: 'tcp',
        src: '10.11.0.6',
        dst: '198.51.100.11',
        sport: '44324',
        dport: '443',
        replySrc: '10.11.0.5',
      },
    ])
  })
})
