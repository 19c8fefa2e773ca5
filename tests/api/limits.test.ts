// The team's limits: concurrent sandboxes (WARREN_MAX_CONCURRENT_SANDBOXES),
// where a create past it is 429 and creates nothing, also under concurrency;
// and the maximum lifetime (WARREN_MAX_LIFETIME) that caps every lease.
import { RateLimitError, Sandbox } from 'e2b'
import { afterEach, describe, expect, it } from 'vitest'
import { api, detail, expectApiError, listedEndAts } from '../helpers/api-client.js'
import { nodeSandboxIds } from '../helpers/orchestrator-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren({
  env: { WARREN_MAX_CONCURRENT_SANDBOXES: '2', WARREN_MAX_LIFETIME: '90' },
})
const made: string[] = []

afterEach(async () => {
  for (const id of made.splice(0)) await Sandbox.kill(id, warren().sdk).catch(() => {})
})

async function expectExactly(ids: string[]) {
  expect([...(await listedEndAts(warren())).keys()].sort()).toEqual([...ids].sort())
  expect(await nodeSandboxIds(warren())).toEqual([...ids].sort())
}

const createV2 = () =>
  api(warren(), 'POST', '/v2/sandboxes', { json: { templateID: 'base', timeout: 60 } })

describe('team limit of 2 concurrent sandboxes', () => {
  it('refuses the third with 429 on both paths and through the SDK, creating nothing', async () => {
    for (let i = 0; i < 2; i++) {
      made.push((await Sandbox.create({ ...warren().sdk, timeoutMs: 60_000 })).sandboxId)
    }
    expectApiError(await createV2(), 429, /limit of 2/)
    const v1 = await api(warren(), 'POST', '/sandboxes', { json: { templateID: 'base' } })
    expectApiError(v1, 429, /limit of 2/)
    await expect(Sandbox.create({ ...warren().sdk, timeoutMs: 60_000 })).rejects.toBeInstanceOf(
      RateLimitError,
    )
    await expectExactly(made)

    // A killed sandbox frees its place at once.
    expect(await Sandbox.kill(made.shift()!, warren().sdk)).toBe(true)
    made.push((await Sandbox.create({ ...warren().sdk, timeoutMs: 60_000 })).sandboxId)
    await expectExactly(made)
  })

  it('lets exactly two of four concurrent creates through', async () => {
    const results = await Promise.all(Array.from({ length: 4 }, () => createV2()))
    for (const r of results) {
      if (r.status === 201) made.push((r.body as { sandboxID: string }).sandboxID)
      else expectApiError(r, 429, /limit/)
    }
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 429, 429])
    await expectExactly(made)
  })
})

describe('team maximum lifetime of 90 s', () => {
  it('caps the lease at create, set-timeout, refresh and connect; shortening still works', async () => {
    const sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 300_000 })
    made.push(sbx.sandboxId)
    const id = sbx.sandboxId
    const d = await detail(warren(), id)
    const cap = Date.parse(d.startedAt) + 90_000
    expect(Date.parse(d.endAt)).toBe(cap)
    const endAt = async () => Date.parse((await detail(warren(), id)).endAt)

    await sbx.setTimeout(3600_000)
    expect(await endAt()).toBe(cap)
    const refresh = await api(warren(), 'POST', `/sandboxes/${id}/refreshes`, {
      json: { duration: 3600 },
    })
    expect(refresh.status).toBe(204)
    expect(await endAt()).toBe(cap)
    await Sandbox.connect(id, { ...warren().sdk, timeoutMs: 600_000 })
    expect(await endAt()).toBe(cap)

    const before = Date.now()
    await sbx.setTimeout(10_000)
    const shortened = await endAt()
    expect(shortened).toBeGreaterThanOrEqual(before + 10_000)
    expect(shortened).toBeLessThan(cap)
  })
})
