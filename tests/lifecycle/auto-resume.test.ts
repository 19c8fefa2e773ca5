// Auto-resume on traffic at the edge proxy: one request wakes a paused
// sandbox (hot: the same server process answers), a sandbox without
// auto-resume stays paused with a clear error, requests that arrive while an
// auto-resume sandbox is pausing wait for the pause and get the real answer
// (one resume for all), a pausing sandbox without auto-resume answers 503
// with Retry-After, and only requests the running sandbox would accept may
// wake it (traffic token, envd token). A burst of requests makes one resume.
import { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { detail, sleep } from '../helpers/api-client.js'
import {
  bootOf,
  type CreatedSandbox,
  connect,
  counter,
  handle,
  pause,
  startServer,
} from '../helpers/lifecycle.js'
import { type ProxyResponse, proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)
const ENVD = 49983
const PORT = 8000
const TRAFFIC = { from: 'memory', trigger: 'traffic' }

/** A sandbox (raw create, so no SDK default sneaks in) with the test server running. */
async function serving(
  body: Record<string, unknown>,
): Promise<{ c: CreatedSandbox; sbx: Sandbox }> {
  const c = await sandboxes.createRaw({
    timeout: 120,
    metadata: { suite: 'lifecycle-auto-resume' },
    ...body,
  })
  const sbx = handle(warren(), c)
  await startServer(sbx, PORT)
  return { c, sbx }
}

const autoResume = { lifecycle: { onTimeout: 'pause', autoResume: true } }

function get(id: string, port: number, headers: Record<string, string> = {}, path = '/') {
  return proxyRequest(warren(), { host: sandboxHost(warren(), id, port), path, headers })
}

const stateOf = async (id: string) => (await detail(warren(), id)).state

/** The API shows a pausing sandbox as paused, but without a snapshot kind yet. */
const isPausing = async (id: string) => {
  const d = await detail(warren(), id)
  return d.state === 'paused' && !d.pausedKind
}

function expectProxyError(res: ProxyResponse, status: number, id: string, message?: RegExp) {
  expect(res.status, res.text).toBe(status)
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  expect(res.json).toMatchObject({ sandboxId: id, code: status, message: expect.any(String) })
  if (message) expect((res.json as { message: string }).message).toMatch(message)
}

describe('auto-resume on traffic', () => {
  it('one plain request wakes a paused sandbox: 200 from the same server process; it stays running', async () => {
    const { c } = await serving(autoResume)
    const id = c.sandboxID
    const boot = bootOf((await get(id, PORT)).text)
    expect(boot).toBeDefined()
    expect(await pause(warren(), id)).toBe(204)
    const resumes = await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)

    const res = await get(id, PORT, {}, '/after-pause')
    expect(res.status, res.text).toBe(200)
    expect(bootOf(res.text)).toBe(boot)
    const d = await detail(warren(), id)
    expect(d).toMatchObject({ state: 'running', resumedFrom: 'memory' })
    // Woken by traffic, the sandbox gets at least the 300 s an auto-resume grants.
    expect(Date.parse(d.endAt)).toBeGreaterThan(Date.now() + 100_000)
    expect(await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)).toBe(resumes + 1)
    expect((await get(id, PORT)).status).toBe(200)
    expect(await stateOf(id)).toBe('running')
  })

  it('without auto-resume the sandbox stays paused: 409 on a user port, 502 on envd', async () => {
    const { c } = await serving({ lifecycle: { onTimeout: 'pause' } })
    const id = c.sandboxID
    expect(await pause(warren(), id)).toBe(204)
    const user = await get(id, PORT)
    expectProxyError(user, 409, id, /paused/)
    expect(user.json).toMatchObject({ port: PORT })
    const envd = await get(id, ENVD, { 'x-access-token': c.envdAccessToken! }, '/health')
    expectProxyError(envd, 502, id, /paused/)
    expect(await stateOf(id)).toBe('paused')
  })

  it('a files-only snapshot is not woken by traffic (it must be resumed explicitly)', async () => {
    const { c } = await serving(autoResume)
    const id = c.sandboxID
    expect(await pause(warren(), id, false)).toBe(204)
    expectProxyError(await get(id, PORT), 409, id, /without memory/)
    expectProxyError(
      await get(id, ENVD, { 'x-access-token': c.envdAccessToken! }, '/envs'),
      502,
      id,
    )
    expect(await stateOf(id)).toBe('paused')
    expect((await connect(warren(), id)).body.resumedFrom).toBe('files')
  })

  it('requests caught by a pause under way wait for it, then one resume answers them all', async () => {
    const { c, sbx } = await serving(autoResume)
    const id = c.sandboxID
    const boot = bootOf((await get(id, PORT)).text)
    let burst: ProxyResponse[] | undefined
    let before = 0
    // Dirty pages make the pause (freeze, then flush the layer) take a while:
    // more of them until the API is seen saying "pausing" before it is done.
    for (let mb = 64; !burst && mb <= 512; mb *= 2) {
      await sbx.commands.run(`dd if=/dev/zero of=/tmp/dirty bs=1M count=${mb} 2>/dev/null`)
      before = await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)
      let done = false
      const paused = pause(warren(), id).finally(() => {
        done = true
      })
      while (!done && !burst) {
        if (await isPausing(id))
          burst = await Promise.all(
            Array.from({ length: 20 }, (_, i) => get(id, PORT, {}, `/${i}`)),
          )
      }
      expect(await paused).toBe(204)
      if (!burst) expect((await connect(warren(), id)).status).toBe(201)
    }
    expect(burst, 'requests were sent while the sandbox was pausing').toBeDefined()
    for (const res of burst!) {
      expect(res.status, res.text).toBe(200)
      expect(bootOf(res.text)).toBe(boot)
    }
    expect(await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)).toBe(before + 1)
    expect(await stateOf(id)).toBe('running')
  })

  it('traffic at the moment of the timeout auto-pause: every request is answered, after one resume', async () => {
    const { c, sbx } = await serving(autoResume)
    const id = c.sandboxID
    await sbx.commands.run('dd if=/dev/zero of=/tmp/dirty bs=1M count=256 2>/dev/null')
    const boot = bootOf((await get(id, PORT)).text)
    const before = await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)
    // The lease runs out in 3 s, while the traffic below flows.
    await Sandbox.setTimeout(id, 3_000, warren().sdk)
    let pausingSeen = false
    let resumed = false
    const watcher = (async () => {
      while (!resumed) {
        if (await isPausing(id)) pausingSeen = true
        resumed = (await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)) > before
        await sleep(10)
      }
    })()
    const answers: ProxyResponse[] = []
    // Four clients send one request after another through the expiry, until
    // the sandbox has paused and been woken by them.
    await Promise.all(
      Array.from({ length: 4 }, async (_, k) => {
        for (let i = 0; !resumed || i < 3; i++) answers.push(await get(id, PORT, {}, `/${k}-${i}`))
      }),
    )
    await watcher
    expect(pausingSeen, 'the sandbox was seen pausing while the traffic flowed').toBe(true)
    for (const res of answers) {
      expect(res.status, res.text).toBe(200)
      expect(bootOf(res.text)).toBe(boot)
    }
    expect(await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)).toBe(before + 1)
    expect(await detail(warren(), id)).toMatchObject({ state: 'running', resumedFrom: 'memory' })
  })

  it('a pausing sandbox without auto-resume answers 503 with Retry-After', async () => {
    const { c, sbx } = await serving({ lifecycle: { onTimeout: 'pause' } })
    const id = c.sandboxID
    let seen: ProxyResponse | undefined
    for (let mb = 64; !seen && mb <= 512; mb *= 2) {
      await sbx.commands.run(`dd if=/dev/zero of=/tmp/dirty bs=1M count=${mb} 2>/dev/null`)
      let done = false
      const paused = pause(warren(), id).finally(() => {
        done = true
      })
      while (!done && !seen) {
        const res = await get(id, PORT)
        if (res.status === 503) seen = res
      }
      expect(await paused).toBe(204)
      if (!seen) expect((await connect(warren(), id)).status).toBe(201)
    }
    expect(seen, 'a request caught the pause under way').toBeDefined()
    expectProxyError(seen!, 503, id, /pausing/)
    expect(seen!.headers['retry-after']).toBe('1')
    // Once paused, it stays paused: 409.
    expectProxyError(await get(id, PORT), 409, id, /paused/)
  })
})

describe('who may wake a paused sandbox', () => {
  it('without public traffic: the traffic token is required (403 keeps it paused)', async () => {
    const { c } = await serving({ ...autoResume, network: { allowPublicTraffic: false } })
    const id = c.sandboxID
    expect(c.trafficAccessToken).toMatch(/\S{16,}/)
    const token = { 'e2b-traffic-access-token': c.trafficAccessToken! }
    expectProxyError(await get(id, PORT), 403, id, /e2b-traffic-access-token/)
    expect((await get(id, PORT, token)).status).toBe(200)

    expect(await pause(warren(), id)).toBe(204)
    const resumes = await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)
    expectProxyError(await get(id, PORT), 403, id)
    expectProxyError(await get(id, PORT, { 'e2b-traffic-access-token': 'wrong' }), 403, id)
    const t = c.trafficAccessToken!
    const almost = `${t.slice(0, -1)}${t.endsWith('x') ? 'y' : 'x'}`
    expectProxyError(await get(id, PORT, { 'e2b-traffic-access-token': almost }), 403, id)
    expect(await stateOf(id)).toBe('paused')
    expect(await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)).toBe(resumes)

    const res = await get(id, PORT, token)
    expect(res.status, res.text).toBe(200)
    expect(await stateOf(id)).toBe('running')
  })

  it("a secure sandbox's envd: X-Access-Token is required to wake it (403 keeps it paused)", async () => {
    const { c } = await serving(autoResume)
    const id = c.sandboxID
    expect(await pause(warren(), id)).toBe(204)
    for (const headers of [{}, { 'x-access-token': 'wrong' }] as Record<string, string>[]) {
      const res = await get(id, ENVD, headers, '/envs')
      expectProxyError(res, 403, id, /X-Access-Token/)
    }
    // Not even envd's open /health wakes it without the token.
    expectProxyError(await get(id, ENVD, {}, '/health'), 403, id)
    expect(await stateOf(id)).toBe('paused')

    const res = await get(id, ENVD, { 'x-access-token': c.envdAccessToken! }, '/envs')
    expect(res.status, res.text).toBe(200)
    expect(res.json).toMatchObject({ E2B_SANDBOX_ID: id })
    expect(await stateOf(id)).toBe('running')
  })

  it('100 concurrent requests to a paused sandbox: one resume, and every request gets 200', async () => {
    const { c } = await serving(autoResume)
    const id = c.sandboxID
    const boot = bootOf((await get(id, PORT)).text)
    expect(await pause(warren(), id)).toBe(204)
    const before = await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)
    const apiResumes = await counter(warren(), 'warren_sandboxes_resumed_total', {
      from: 'memory',
      trigger: 'api',
    })
    const all = await Promise.all(Array.from({ length: 100 }, (_, i) => get(id, PORT, {}, `/${i}`)))
    for (const res of all) {
      expect(res.status, res.text).toBe(200)
      expect(bootOf(res.text)).toBe(boot)
    }
    expect(await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)).toBe(before + 1)
    expect(
      await counter(warren(), 'warren_sandboxes_resumed_total', { from: 'memory', trigger: 'api' }),
    ).toBe(apiResumes)
    expect(await stateOf(id)).toBe('running')
  })
})
