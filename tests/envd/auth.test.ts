import { createServer } from 'node:net'
import { AuthenticationError, Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initEnvd, type RunningEnvd, sdk, startEnvd } from './harness.js'

const TOKEN = 'auth-test-token'

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}
let envd: RunningEnvd

beforeAll(async () => {
  envd = await startEnvd()
})
afterAll(async () => {
  await envd?.stop()
})

describe('before /init sets a token', () => {
  it('serves every route without one', async () => {
    expect((await fetch(`${envd.url}/envs`)).status).toBe(200)
    expect((await sdk(envd).commands.run('true')).exitCode).toBe(0)
  })

  it('rejects unknown fields and bad values in /init', async () => {
    const r = await initEnvd(envd, { accessToken: TOKEN, surprise: 1 })
    expect(r.status).toBe(400)
    expect(await r.json()).toMatchObject({ code: 400, message: "unknown field 'surprise'" })
    expect((await initEnvd(envd, { defaultUser: 'ghost' })).status).toBe(400)
    expect((await initEnvd(envd, { timestamp: 'not a date' })).status).toBe(400)
  })
})

describe('with a token', () => {
  beforeAll(async () => {
    const r = await initEnvd(envd, {
      accessToken: TOKEN,
      defaultUser: 'user',
      envVars: { A: '1' },
      timestamp: new Date().toISOString(),
    })
    expect(r.status).toBe(204)
  })

  it('keeps /health open', async () => {
    expect((await fetch(`${envd.url}/health`)).status).toBe(204)
  })

  it('answers REST routes without the token with 401 {code, message}', async () => {
    for (const path of ['/envs', '/metrics', '/files?path=x']) {
      const r = await fetch(`${envd.url}${path}`)
      expect(r.status).toBe(401)
      expect(await r.json()).toMatchObject({ code: 401, message: expect.any(String) })
    }
    const wrong = await fetch(`${envd.url}/envs`, { headers: { 'X-Access-Token': 'wrong' } })
    expect(wrong.status).toBe(401)
  })

  it('answers Connect routes without the token with unauthenticated', async () => {
    const unary = await fetch(`${envd.url}/process.Process/List`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    })
    expect(unary.status).toBe(401)
    expect(await unary.json()).toMatchObject({ code: 'unauthenticated' })
    await expect(sdk(envd).commands.run('true')).rejects.toBeInstanceOf(AuthenticationError)
    await expect(sdk(envd, 'wrong').files.list('/')).rejects.toBeInstanceOf(AuthenticationError)
  })

  it('serves everything with the token', async () => {
    const envs = await fetch(`${envd.url}/envs`, { headers: { 'X-Access-Token': TOKEN } })
    expect(await envs.json()).toEqual({ A: '1' })
    const res = await fetch(`${envd.url}/metrics`, { headers: { 'X-Access-Token': TOKEN } })
    const metrics = (await res.json()) as Record<string, number>
    expect(metrics).toMatchObject({
      cpu_count: expect.any(Number),
      cpu_used_pct: expect.any(Number),
      mem_total: expect.any(Number),
      mem_used: expect.any(Number),
      disk_total: expect.any(Number),
      disk_used: expect.any(Number),
    })
    expect(metrics.mem_total).toBeGreaterThan(0)
    expect(metrics.disk_used).toBeLessThanOrEqual(metrics.disk_total!)
    expect((await sdk(envd, TOKEN).commands.run('echo $A')).stdout).toBe('1\n')
  })

  it('requires the current token to re-init', async () => {
    expect((await initEnvd(envd, { accessToken: TOKEN })).status).toBe(401)
    expect((await initEnvd(envd, { accessToken: 'other' }, 'wrong')).status).toBe(401)
    expect((await initEnvd(envd, { accessToken: TOKEN, envVars: { B: '2' } }, TOKEN)).status).toBe(
      204,
    )
    const envs = await fetch(`${envd.url}/envs`, { headers: { 'X-Access-Token': TOKEN } })
    expect(await envs.json()).toEqual({ A: '1', B: '2' })
  })
})

describe('Sandbox.connect in debug mode', () => {
  it('reaches envd on the fixed localhost:49983', async () => {
    // Debug mode ignores the sandbox id and talks to localhost:49983; only
    // run when that port is free here (and no E2B_SANDBOX_URL redirects it).
    if (!(await portIsFree(49983)) || process.env.E2B_SANDBOX_URL) return
    const fixed = await startEnvd({ port: 49983 })
    try {
      await initEnvd(fixed, { defaultUser: 'user' })
      const sbx = await Sandbox.connect('any-id', { debug: true })
      expect((await sbx.commands.run('id -un')).stdout).toBe('user\n')
      expect(await sbx.isRunning()).toBe(true)
    } finally {
      await fixed.stop()
    }
  })
})
