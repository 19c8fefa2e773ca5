// A deployment whose node does not offer gVisor (WARREN_GVISOR_PLATFORM=off,
// as on a machine without runsc): a create asking for it is refused with 400
// and a clear message, and nothing is made — never a runc sandbox instead.
import { describe, expect, it } from 'vitest'
import { api, expectApiError } from '../helpers/api-client.js'
import { nodeSandboxIds } from '../helpers/orchestrator-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren({ env: { WARREN_GVISOR_PLATFORM: 'off' } })
const sandboxes = useSandboxes(warren)

describe('gVisor not offered', () => {
  it('refuses isolation: gvisor with 400 and makes nothing; runc still works', async () => {
    const res = await api(warren(), 'POST', '/v2/sandboxes', {
      json: { templateID: 'base', isolation: 'gvisor', metadata: { suite: 'gvisor-off' } },
    })
    expectApiError(res, 400, /no node of this deployment offers gvisor isolation/)
    const listed = await api(warren(), 'GET', '/v2/sandboxes')
    expect(listed.body).toEqual([])
    expect(await nodeSandboxIds(warren())).toEqual([])

    const created = await sandboxes.createRaw({
      isolation: 'runc',
      metadata: { suite: 'gvisor-off' },
    })
    const got = await api(warren(), 'GET', `/sandboxes/${created.sandboxID}`)
    expect((got.body as { isolation: string }).isolation).toBe('runc')
  })
})
