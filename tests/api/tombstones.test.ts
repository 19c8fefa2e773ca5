// Killed sandboxes are remembered for WARREN_TOMBSTONE_TTL (so the proxy can
// say why they are gone), then forgotten by the store, the API's catalog and
// the proxy's copy of it alike.
import { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { api, eventually, expectApiError } from '../helpers/api-client.js'
import { proxyRequest } from '../helpers/proxy-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren({ env: { WARREN_TOMBSTONE_TTL: '1' } })

describe('tombstones', () => {
  it('answer 410 after a kill, and are forgotten everywhere after their TTL', async () => {
    const sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 60_000 })
    try {
      expect(await sbx.kill()).toBe(true)
    } finally {
      await sbx.kill().catch(() => {})
    }
    const host = sbx.getHost(8080)
    const killed = await proxyRequest(warren(), { host })
    expect(killed.status).toBe(410)
    expect(killed.headers['x-warren-kill-reason']).toBe('request')

    // Forgotten: the proxy answers as for a sandbox it never knew.
    await eventually(
      'the proxy forgets the tombstone',
      async () => (await proxyRequest(warren(), { host })).status === 502,
      10_000,
      100,
    )
    const forgotten = await proxyRequest(warren(), { host })
    expect(forgotten.json).toEqual({
      sandboxId: sbx.sandboxId,
      code: 502,
      message: 'The sandbox was not found',
    })
    expect(await sbx.isRunning()).toBe(false)
    expectApiError(await api(warren(), 'GET', `/sandboxes/${sbx.sandboxId}`), 404)
    expect(await Sandbox.kill(sbx.sandboxId, warren().sdk)).toBe(false)
  })
})
