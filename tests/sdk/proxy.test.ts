// Sandbox traffic through the edge proxy: the SDK's commands and files, a
// server in the sandbox at its `{port}-{id}.{domain}` host, and the proxy's
// error contract for unknown, closed, killed and forbidden targets.
import { randomBytes } from 'node:crypto'
import { CommandExitError, type Sandbox } from 'e2b'
import { beforeAll, describe, expect, it } from 'vitest'
import { api, eventually } from '../helpers/api-client.js'
import { fixtureSecret } from '../helpers/orchestrator-client.js'
import { proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)
const ENVD = 49983
const HTTP_PORT = 8000
const UNKNOWN = 'zzzzzzzzzzzzzzzzzzz0'
let sbx: Sandbox

beforeAll(async () => {
  sbx = await sandboxes.create({ timeoutMs: 120_000, metadata: { suite: 'proxy' } })
})

describe('commands and files through the proxy', () => {
  it('runs commands with output, environment, working directory and exit codes', async () => {
    const r = await sbx.commands.run('echo out; echo err >&2; pwd', { cwd: '/tmp' })
    expect(r).toMatchObject({ exitCode: 0, stdout: 'out\n/tmp\n', stderr: 'err\n' })
    const env = await sbx.commands.run('echo "$A-$B"', { envs: { A: '1', B: 'two' } })
    expect(env.stdout).toBe('1-two\n')
    const failed = await sbx.commands.run('exit 7').catch((e: unknown) => e)
    expect(failed).toBeInstanceOf(CommandExitError)
    expect((failed as CommandExitError).exitCode).toBe(7)
  })

  it('writes, reads and lists files, text and binary', async () => {
    await sbx.files.write('/tmp/files/hello.txt', 'héllo\n')
    expect(await sbx.files.read('/tmp/files/hello.txt')).toBe('héllo\n')
    const bytes = randomBytes(200_000)
    await sbx.files.write('/tmp/files/blob.bin', bytes.buffer.slice(0) as ArrayBuffer)
    const back = await sbx.files.read('/tmp/files/blob.bin', { format: 'bytes' })
    expect(Buffer.from(back).equals(bytes)).toBe(true)
    const names = (await sbx.files.list('/tmp/files')).map((e) => e.name).sort()
    expect(names).toEqual(['blob.bin', 'hello.txt'])
    expect((await sbx.commands.run('sha256sum < /tmp/files/blob.bin')).stdout.slice(0, 64)).toBe(
      (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex'),
    )
  })

  it('serves a server started in the sandbox at its {port}-{id}.{domain} host', async () => {
    await sbx.files.write('/tmp/www/index.html', '<p>from the sandbox</p>\n')
    await sbx.commands.run(`python3 -m http.server ${HTTP_PORT} --bind 0.0.0.0`, {
      background: true,
      cwd: '/tmp/www',
    })
    const host = sbx.getHost(HTTP_PORT)
    expect(host).toBe(sandboxHost(warren(), sbx.sandboxId, HTTP_PORT))
    // The server takes a moment to listen; until then the proxy answers 502.
    await eventually(
      'the server answers',
      async () => (await proxyRequest(warren(), { host, path: '/index.html' })).status === 200,
      15_000,
      100,
    )
    const res = await proxyRequest(warren(), { host, path: '/index.html' })
    expect(res.text).toBe('<p>from the sandbox</p>\n')
    // The sandbox sees where the request came from and what it asked for.
    const missing = await proxyRequest(warren(), { host, path: '/nope' })
    expect(missing.status).toBe(404)
  })
})

describe('the proxy error contract', () => {
  it('answers 400 when no sandbox is named', async () => {
    const res = await proxyRequest(warren(), { path: '/health' })
    expect(res.status).toBe(400)
    expect(res.json).toEqual({ code: 400, message: expect.any(String) })
  })

  it('answers 502 with {sandboxId, message, code} for an unknown sandbox', async () => {
    for (const req of [
      { host: sandboxHost(warren(), UNKNOWN, HTTP_PORT) },
      { headers: { 'e2b-sandbox-id': UNKNOWN } },
    ]) {
      const res = await proxyRequest(warren(), { ...req, path: '/health' })
      expect(res.status).toBe(502)
      expect(res.headers['content-type']).toMatch(/^application\/json/)
      expect(res.json).toEqual({ sandboxId: UNKNOWN, message: expect.any(String), code: 502 })
    }
  })

  it('answers 502 naming the port when nothing listens on it', async () => {
    const res = await proxyRequest(warren(), { host: sbx.getHost(8001) })
    expect(res.status).toBe(502)
    expect(res.json).toEqual({
      sandboxId: sbx.sandboxId,
      port: 8001,
      code: 502,
      message: expect.stringMatching(/port/),
    })
  })

  it('gives browsers an HTML page with the same status', async () => {
    const res = await proxyRequest(warren(), {
      host: sbx.getHost(8001),
      headers: { accept: 'text/html,application/xhtml+xml' },
    })
    expect(res.status).toBe(502)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.text).toMatch(/<html/)
    expect(res.text).toContain(sbx.sandboxId)
  })

  it("refuses envd's /init through the proxy however it is addressed", async () => {
    for (const req of [
      { headers: { 'e2b-sandbox-id': sbx.sandboxId }, path: '/init' },
      { host: sbx.getHost(ENVD), path: '/init' },
      { host: sbx.getHost(ENVD), path: '//%69nit?x=1' },
      { host: sandboxHost(warren(), UNKNOWN, ENVD), path: '/init' },
    ]) {
      const res = await proxyRequest(warren(), {
        ...req,
        method: 'POST',
        headers: { ...req.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ accessToken: 'stolen' }),
      })
      expect(res.status, `${req.path} ${res.text}`).toBe(404)
      expect(res.json).toMatchObject({ code: 404 })
    }
    // envd still serves the SDK with the token it was created with.
    expect((await sbx.commands.run('echo ok')).stdout).toBe('ok\n')
  })

  it('refuses request targets that are not a path (absolute-form /init) at both proxies', async () => {
    // An insecure sandbox's envd takes a token from /init: a stranger must not reach it.
    const created = await api(warren(), 'POST', '/sandboxes', {
      json: { templateID: 'base', secure: false, timeout: 120 },
    })
    expect(created.status, created.text).toBe(201)
    const id = (created.body as { sandboxID: string }).sandboxID
    try {
      // 404 from Warren; malformed targets are refused by the HTTP parser itself (400).
      const attempts: Array<[string, number]> = [
        ['http://x/init', 404],
        ['HTTP://X//INIT', 404],
        ['http://x:49983/%69nit', 404],
        ['*', 404],
        ['http:/init', 400],
        ['x/init', 400],
      ]
      for (const [name, port, headers] of [
        ['edge', warren().ports.proxy, { 'e2b-sandbox-id': id }],
        [
          'node',
          warren().ports.nodeProxy,
          {
            'x-warren-sandbox-id': id,
            'x-warren-sandbox-port': String(ENVD),
            'x-warren-cluster-secret': fixtureSecret(warren()),
          },
        ],
      ] as const) {
        for (const [path, status] of attempts) {
          const res = await proxyRequest(warren(), {
            port,
            method: 'POST',
            path,
            headers: { ...headers, 'content-type': 'application/json' },
            body: JSON.stringify({ accessToken: 'stolen', envVars: { PWNED: '1' } }),
          })
          expect(res.status, `${name} ${path}: ${res.text}`).toBe(status)
          if (status === 404) expect(res.json).toMatchObject({ code: 404 })
        }
      }
      // envd never saw a token: it still answers without one, and has no PWNED variable.
      const health = await proxyRequest(warren(), {
        headers: { 'e2b-sandbox-id': id },
        path: '/envs',
      })
      expect(health.status, health.text).toBe(200)
      expect(health.json).not.toHaveProperty('PWNED')
    } finally {
      await api(warren(), 'DELETE', `/sandboxes/${id}`)
    }
  })

  it('after a kill: 502 on the envd port, 410 with the reason on other ports', async () => {
    const victim = await sandboxes.create({ metadata: { suite: 'proxy' } })
    expect(await victim.kill()).toBe(true)
    const id = victim.sandboxId
    const envd = await proxyRequest(warren(), {
      headers: { 'e2b-sandbox-id': id },
      path: '/health',
    })
    expect(envd.status).toBe(502)
    expect(envd.json).toEqual({ sandboxId: id, code: 502, message: expect.stringMatching(/kill/) })
    expect(await victim.isRunning()).toBe(false)

    const other = await proxyRequest(warren(), { host: victim.getHost(HTTP_PORT) })
    expect(other.status).toBe(410)
    expect(other.headers['x-warren-kill-reason']).toBe('request')
    expect(other.json).toEqual({
      sandboxId: id,
      port: HTTP_PORT,
      code: 410,
      message: expect.stringContaining('request'),
    })
    const page = await proxyRequest(warren(), {
      host: victim.getHost(HTTP_PORT),
      headers: { accept: 'text/html' },
    })
    expect(page.status).toBe(410)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
  })
})
