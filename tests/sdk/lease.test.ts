// The lease: kill, setTimeout both ways, connect and refresh that extend but
// never shorten, and a short timeout that ends the sandbox at its endAt.
import { NotFoundError, Sandbox, SandboxNotFoundError } from 'e2b'
import { describe, expect, it } from 'vitest'
import { api, detail, eventually, listedEndAts, sleep } from '../helpers/api-client.js'
import { proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)

const create = (timeoutMs: number) => sandboxes.create({ timeoutMs, metadata: { suite: 'lease' } })

const endAtOf = async (id: string) => (await Sandbox.getInfo(id, warren().sdk)).endAt.getTime()

/** Runs `call` and asserts the new endAt is `seconds` after some instant during the call. */
async function expectEndAtSetBy(id: string, seconds: number, call: () => Promise<unknown>) {
  const before = Date.now()
  await call()
  const after = Date.now()
  const endAt = await endAtOf(id)
  expect(endAt).toBeGreaterThanOrEqual(before + seconds * 1000)
  expect(endAt).toBeLessThanOrEqual(after + seconds * 1000)
  return endAt
}

describe('the lease', () => {
  it('kill answers true once, then false; the sandbox is gone everywhere', async () => {
    const sbx = await create(60_000)
    expect(await sbx.kill()).toBe(true)
    expect(await sbx.kill()).toBe(false)
    expect(await Sandbox.kill(sbx.sandboxId, warren().sdk)).toBe(false)
    await expect(sbx.getInfo()).rejects.toBeInstanceOf(SandboxNotFoundError)
    await expect(Sandbox.connect(sbx.sandboxId, warren().sdk)).rejects.toBeInstanceOf(
      SandboxNotFoundError,
    )
    await expect(sbx.setTimeout(60_000)).rejects.toBeInstanceOf(SandboxNotFoundError)
    expect(await sbx.isRunning()).toBe(false)
    expect((await listedEndAts(warren())).has(sbx.sandboxId)).toBe(false)
  })

  it('setTimeout(0) ends the sandbox now', async () => {
    const sbx = await create(60_000)
    const before = Date.now()
    await sbx.setTimeout(0)
    await eventually(
      'the sandbox is gone',
      async () => (await api(warren(), 'GET', `/sandboxes/${sbx.sandboxId}`)).status === 404,
      1000,
      25,
    )
    expect(Date.now() - before).toBeLessThanOrEqual(1000)
    expect(await sbx.isRunning()).toBe(false)
  })

  it('setTimeout moves endAt later and earlier', async () => {
    const sbx = await create(60_000)
    const initial = await endAtOf(sbx.sandboxId)
    const longer = await expectEndAtSetBy(sbx.sandboxId, 120, () => sbx.setTimeout(120_000))
    expect(longer).toBeGreaterThan(initial)
    const shorter = await expectEndAtSetBy(sbx.sandboxId, 30, () =>
      Sandbox.setTimeout(sbx.sandboxId, 30_000, warren().sdk),
    )
    expect(shorter).toBeLessThan(initial)
    // Milliseconds round up to whole seconds, as the SDK sends them.
    await expectEndAtSetBy(sbx.sandboxId, 2, () => sbx.setTimeout(1500))
    expect(await sbx.isRunning()).toBe(true)
  })

  it('connect extends the lease but never shortens it', async () => {
    const sbx = await create(60_000)
    const initial = await endAtOf(sbx.sandboxId)
    const same = await Sandbox.connect(sbx.sandboxId, { ...warren().sdk, timeoutMs: 10_000 })
    expect(await endAtOf(sbx.sandboxId)).toBe(initial)
    expect((await same.commands.run('echo still here')).stdout).toBe('still here\n')
    const extended = await expectEndAtSetBy(sbx.sandboxId, 120, () =>
      Sandbox.connect(sbx.sandboxId, { ...warren().sdk, timeoutMs: 120_000 }),
    )
    expect(extended).toBeGreaterThan(initial)
    // The instance method takes the same path.
    await same.connect({ timeoutMs: 5_000 })
    expect(await endAtOf(sbx.sandboxId)).toBe(extended)
  })

  it('refreshes extend the lease but never shorten it', async () => {
    const sbx = await create(60_000)
    const initial = await endAtOf(sbx.sandboxId)
    const refresh = (json: unknown) =>
      api(warren(), 'POST', `/sandboxes/${sbx.sandboxId}/refreshes`, { json })
    expect((await refresh({ duration: 5 })).status).toBe(204)
    expect(await endAtOf(sbx.sandboxId)).toBe(initial)
    const extended = await expectEndAtSetBy(sbx.sandboxId, 90, async () => {
      expect((await refresh({ duration: 90 })).status).toBe(204)
    })
    expect(extended).toBeGreaterThan(initial)
  })

  it('a sandbox with a 3 s timeout runs until its endAt and is gone within 1 s of it', async () => {
    const sbx = await create(3_000)
    const id = sbx.sandboxId
    const endAt = (await sbx.getInfo()).endAt.getTime()
    const host = sandboxHost(warren(), id, 8080)

    // Shortly before the deadline it is still fully there (the wait is the test).
    await sleep(endAt - 400 - Date.now())
    expect(await sbx.isRunning()).toBe(true)
    expect((await detail(warren(), id)).state).toBe('running')

    let goneAt = 0
    await eventually(
      'getInfo answers not found',
      async () => {
        const res = await api(warren(), 'GET', `/sandboxes/${id}`)
        if (res.status === 200) return false
        goneAt = Date.now()
        expect(res.status, res.text).toBe(404)
        return true
      },
      endAt + 5000 - Date.now(),
      25,
    )
    expect(goneAt).toBeGreaterThanOrEqual(endAt)
    expect(goneAt - endAt).toBeLessThanOrEqual(1000)

    const err = await sbx.getInfo().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SandboxNotFoundError)
    expect(err).toBeInstanceOf(NotFoundError)
    expect(await sbx.isRunning()).toBe(false)
    expect(await sbx.kill()).toBe(false)
    expect((await listedEndAts(warren())).has(id)).toBe(false)
    // The proxy knows why: killed by its timeout.
    await eventually('the proxy answers 410', async () => {
      return (await proxyRequest(warren(), { host })).status === 410
    })
    const gone = await proxyRequest(warren(), { host })
    expect(gone.headers['x-warren-kill-reason']).toBe('timeout')
    expect(gone.json).toEqual({
      sandboxId: id,
      port: 8080,
      code: 410,
      message: expect.stringContaining('timeout'),
    })
  })
})
