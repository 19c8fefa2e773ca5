import { parseNetworkConfig } from '@warren/shared'
import * as packet from 'dns-packet'
import { describe, expect, it } from 'vitest'
import { DnsServer } from './server.js'
import type { Upstream } from './upstream.js'

const query = (name: string) =>
  packet.encode({
    type: 'query',
    id: 4242,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type: 'A', name }],
  })

function server(upstream: Partial<Upstream>) {
  const policy = parseNetworkConfig({ allowOut: ['ok.test'], denyOut: ['0.0.0.0/0'] }).egress
  return new DnsServer({
    port: 0,
    upstream: upstream as Upstream,
    policyFor: (ip) => (ip === '10.0.0.2' ? [policy] : undefined),
    log: { warn() {} } as never,
  })
}

describe('DnsServer.answer', () => {
  it('refuses a name the rules do not allow with REFUSED (not an empty NOERROR)', async () => {
    const reply = packet.decode((await server({}).answer(query('no.test'), '10.0.0.2'))!)
    expect(reply).toMatchObject({ type: 'response', id: 4242, rcode: 'REFUSED', answers: [] })
    expect(reply.questions).toEqual([{ type: 'A', name: 'no.test', class: 'IN' }])
  })

  it('answers SERVFAIL when the upstream fails', async () => {
    const s = server({ exchange: () => Promise.reject(new Error('down')) })
    const reply = packet.decode((await s.answer(query('ok.test'), '10.0.0.2'))!)
    expect(reply).toMatchObject({ id: 4242, rcode: 'SERVFAIL' })
  })

  it('stays silent for a source that is not a sandbox', async () => {
    expect(await server({}).answer(query('ok.test'), '192.0.2.9')).toBeUndefined()
  })
})
