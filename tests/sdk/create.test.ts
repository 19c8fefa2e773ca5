// Both create paths (the SDK's POST /v2/sandboxes and the older POST
// /sandboxes with `secure`), and the shape of what getInfo reports.
import { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { api, detail } from '../helpers/api-client.js'
import { proxyRequest } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)

function semverAtLeast(v: string, min: [number, number, number]): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v)
  if (!m) return false
  const parts = [Number(m[1]), Number(m[2]), Number(m[3])]
  for (let i = 0; i < 3; i++) if (parts[i] !== min[i]) return parts[i]! > min[i]!
  return true
}

/** An envd file read through the proxy, with or without the access token. */
function readHostname(id: string, token?: string) {
  return proxyRequest(warren(), {
    path: '/files?path=/etc/hostname&username=user',
    headers: { 'e2b-sandbox-id': id, ...(token ? { 'x-access-token': token } : {}) },
  })
}

describe('create through the SDK (POST /v2/sandboxes)', () => {
  it('reports a running sandbox with a real, stable lease and the requested settings', async () => {
    const before = Date.now()
    const sbx = await sandboxes.create({
      timeoutMs: 60_000,
      metadata: { suite: 'create', 'with space': 'a&b=c', ünï: 'cödé' },
      envs: { GREETING: 'hi from env' },
    })
    const after = Date.now()

    const info = await sbx.getInfo()
    expect(info.sandboxId).toBe(sbx.sandboxId)
    expect(info.templateId).toBe('base')
    expect(info.state).toBe('running')
    expect(info.metadata).toEqual({ suite: 'create', 'with space': 'a&b=c', ünï: 'cödé' })
    expect(semverAtLeast(info.envdVersion, [0, 1, 0]), info.envdVersion).toBe(true)
    expect(info.cpuCount).toBeGreaterThan(0)
    expect(info.memoryMB).toBeGreaterThan(0)
    expect(info.lifecycle).toEqual({ onTimeout: 'kill', autoResume: false })
    expect(info.sandboxDomain).toBe(`localhost:${warren().ports.proxy}`)
    // endAt = startedAt + timeout, with startedAt inside the create call.
    expect(info.startedAt.getTime()).toBeGreaterThanOrEqual(before)
    expect(info.startedAt.getTime()).toBeLessThanOrEqual(after)
    expect(info.endAt.getTime() - info.startedAt.getTime()).toBe(60_000)

    // Stable: asking again, or listing, reports the same instant.
    const again = await Sandbox.getInfo(sbx.sandboxId, warren().sdk)
    expect(again.endAt.getTime()).toBe(info.endAt.getTime())
    expect(again.startedAt.getTime()).toBe(info.startedAt.getTime())
    const listed = await Sandbox.list({
      ...warren().sdk,
      query: { metadata: { suite: 'create' } },
    }).nextItems()
    expect(listed.map((s) => s.sandboxId)).toContain(sbx.sandboxId)
    expect(listed.find((s) => s.sandboxId === sbx.sandboxId)!.endAt.getTime()).toBe(
      info.endAt.getTime(),
    )

    // Metrics describe the same sandbox.
    const [sample, ...more] = await sbx.getMetrics()
    expect(more).toEqual([])
    expect(sample!.cpuCount).toBe(info.cpuCount)
    expect(sample!.memTotal).toBe(info.memoryMB * 1024 * 1024)
    expect(sample!.memUsed).toBeGreaterThan(0)

    // The environment variables reached the sandbox; v2 sandboxes are secure.
    expect((await sbx.commands.run('echo "$GREETING"')).stdout).toBe('hi from env\n')
    const d = await detail(warren(), sbx.sandboxId)
    expect(d.envdAccessToken).toEqual(expect.any(String))
    expect((await readHostname(sbx.sandboxId)).status).toBe(401)
    const ok = await readHostname(sbx.sandboxId, d.envdAccessToken)
    expect(ok.status).toBe(200)
    expect(ok.text.trim()).toBe(sbx.sandboxId)
  })

  it('uses the default timeout of 300 s when none is given', async () => {
    const sbx = await sandboxes.create({ metadata: { suite: 'create' } })
    const info = await sbx.getInfo()
    expect(info.endAt.getTime() - info.startedAt.getTime()).toBe(300_000)
  })
})

describe('create through POST /sandboxes (older SDKs)', () => {
  it.each([
    { name: 'secure omitted', secure: undefined, token: false },
    { name: 'secure: false', secure: false, token: false },
    { name: 'secure: true', secure: true, token: true },
  ])('$name', async ({ secure, token }) => {
    const res = await api(warren(), 'POST', '/sandboxes', {
      json: { templateID: 'base', timeout: 120, metadata: { suite: 'create-v1' }, secure },
    })
    expect(res.status, res.text).toBe(201)
    const body = res.body as Record<string, unknown>
    const id = sandboxes.add(body.sandboxID as string)
    expect(body).toEqual({
      templateID: 'base',
      sandboxID: expect.stringMatching(/^[a-z0-9]{20}$/),
      clientID: expect.any(String),
      envdVersion: expect.any(String),
      trafficAccessToken: null,
      domain: `localhost:${warren().ports.proxy}`,
      ...(token ? { envdAccessToken: expect.any(String) } : {}),
    })
    if (!token) expect(body).not.toHaveProperty('envdAccessToken')

    const d = await detail(warren(), id)
    expect(d.state).toBe('running')
    expect(Date.parse(d.endAt) - Date.parse(d.startedAt)).toBe(120_000)
    if (token) expect(d.envdAccessToken).toBe(body.envdAccessToken)
    else expect(d).not.toHaveProperty('envdAccessToken')

    // Without a token envd is open; with one, it refuses whoever lacks it.
    expect((await readHostname(id)).status).toBe(token ? 401 : 200)
    // The SDK picks up whatever token there is from connect and just works.
    const sbx = await Sandbox.connect(id, warren().sdk)
    expect((await sbx.commands.run('hostname')).stdout).toBe(`${id}\n`)
  })

  it('accepts the body that SDKs before 2.51 send', async () => {
    // What e2b 2.x (before /v2/sandboxes) posts for Sandbox.create() with defaults.
    const res = await api(warren(), 'POST', '/sandboxes', {
      json: {
        templateID: 'base',
        timeout: 300,
        secure: true,
        allow_internet_access: true,
        autoPause: false,
        autoResume: { enabled: false },
        metadata: { suite: 'create-v1' },
        envVars: {},
      },
    })
    expect(res.status, res.text).toBe(201)
    const id = sandboxes.add((res.body as { sandboxID: string }).sandboxID)
    expect(res.body).toHaveProperty('envdAccessToken')
    const d = await detail(warren(), id)
    expect(d.lifecycle).toMatchObject({ onTimeout: 'kill', autoResume: false })
    const sbx = await Sandbox.connect(id, warren().sdk)
    expect((await sbx.commands.run('echo ok')).stdout).toBe('ok\n')
  })
})
