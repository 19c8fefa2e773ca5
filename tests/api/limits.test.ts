// The team's limit of concurrent sandboxes (WARREN_MAX_CONCURRENT_SANDBOXES):
// a create past it is 429 and creates nothing, also under concurrency.
import { RateLimitError, Sandbox } from 'e2b'
import { afterEach, describe, expect, it } from 'vitest'
import { api, expectApiError, listedEndAts } from '../helpers/api-client.js'
import { nodeSandboxIds } from '../helpers/orchestrator-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren({ env: { WARREN_MAX_CONCURRENT_SANDBOXES: '2' } })
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
