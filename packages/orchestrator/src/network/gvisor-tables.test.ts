import { parseNetworkConfig } from '@warren/shared'
import { describe, expect, it } from 'vitest'
import { gvisorTableName, renderGvisorHostTable, renderGvisorNetnsTable } from './gvisor-tables.js'

const base = {
  table: gvisorTableName('wr', 7),
  hostIf: 'wr-v7',
  hostIp: '10.11.0.29',
  sandboxIp: '10.11.0.30',
  hostAddresses: ['192.0.2.2'],
  pool: '10.11.0.0/16',
  services: { dnsPort: 5053, egressHttpPort: 5080, egressTlsPort: 5443 },
}

/** The rule lines of a rendered table (no blanks, no comments). */
const rules = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.includes('iifname'))

describe('renderGvisorHostTable', () => {
  it('keys every rule on the sandbox veth, in the sandbox table order', () => {
    const text = renderGvisorHostTable(base)
    expect(text).toMatch(/^add table inet warren_wr_g7\ndelete table inet warren_wr_g7\n/)
    const lines = rules(text)
    expect(lines.length).toBeGreaterThan(5)
    for (const l of lines) expect(l.startsWith('iifname "wr-v7" ')).toBe(true)
    const order = [
      'ip saddr != 10.11.0.30 drop',
      'meta nfproto ipv6 drop',
      'ip daddr 10.11.0.29 meta l4proto { tcp, udp } th dport 53 dnat ip to 10.11.0.29:5053',
      'ip daddr != 10.11.0.29 reject',
      'ct state established,related accept',
      'ip daddr @always_denied reject',
      'ip daddr @allow_out accept',
      'ip daddr @deny_out reject',
    ]
    const at = order.map((o) => lines.findIndex((l) => l.includes(o)))
    expect(at.every((i) => i >= 0)).toBe(true)
    expect([...at].sort((a, b) => a - b)).toEqual(at)
    // The host's own addresses and the pool are always denied.
    expect(text).toMatch(/elements = \{ [^}]*10\.11\.0\.0\/16, 192\.0\.2\.2\/32 \}/)
  })

  // biome-ignore format: a table reads best one case per line
  const cases: Array<[string, Parameters<typeof parseNetworkConfig>[0], RegExp[], RegExp[]]> = [
    ['no rules', {}, [], [/dport 80/, /dport 443/]],
    ['address rules', { denyOut: ['203.0.113.0/24'], allowOut: ['203.0.113.7'] }, [/set allow_out \{[^}]*203\.0\.113\.7/, /set deny_out \{[^}]*203\.0\.113\.0\/24/], [/dport 80/]],
    ['domain rules', { allowOut: ['allowed.test'], denyOut: ['0.0.0.0/0'] }, [/tcp dport 80 ip daddr != @always_denied ip daddr != @allow_out dnat ip to 10\.11\.0\.29:5080/, /tcp dport 443 .* dnat ip to 10\.11\.0\.29:5443/], []],
  ]
  it.each(cases)('%s', (_, network, present, absent) => {
    const { egress } = parseNetworkConfig(network, null)
    const text = renderGvisorHostTable({ ...base, egress })
    for (const re of present) expect(text).toMatch(re)
    for (const re of absent) expect(text).not.toMatch(re)
  })
})

describe('renderGvisorNetnsTable', () => {
  it('drops every IP packet the namespace kernel sees, replacing the sandbox table', () => {
    const text = renderGvisorNetnsTable()
    expect(text).toMatch(/^add table inet sandbox\ndelete table inet sandbox\n/)
    expect(text.match(/policy drop;/g)).toHaveLength(2)
    expect(text).not.toMatch(/accept|dnat/)
  })
})
