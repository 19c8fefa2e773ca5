// Every field the pinned SDK's create sends is implemented or refused with a
// 400 that names it — never dropped. `network.httpsPorts` is implemented: the
// proxy reaches those ports over TLS (the sandbox's own, often self-signed,
// certificate), for plain requests and upgraded connections alike.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Sandbox, SandboxError, type SandboxOpts } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detail } from '../helpers/api-client.js'
import { pause } from '../helpers/lifecycle.js'
import { proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const made: string[] = []
let cert: { key: string; cert: string }

beforeAll(() => {
  // A self-signed certificate made on the host, as a sandbox's server would have one.
  const dir = mkdtempSync(join(tmpdir(), 'warren-https-ports-'))
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=sandbox.test',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    )
    cert = {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
afterAll(async () => {
  for (const id of made) await Sandbox.kill(id, warren().sdk).catch(() => {})
})

async function create(opts: SandboxOpts): Promise<Sandbox> {
  const sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 120_000, ...opts })
  made.push(sbx.sandboxId)
  return sbx
}

/**
 * An HTTPS server in the sandbox on `port` that answers `tls <path>`, and
 * echoes the bytes of an upgraded connection; plus a plain HTTP one on `plain`.
 */
async function startServers(sbx: Sandbox, port: number, plain: number): Promise<void> {
  await sbx.files.write('/tmp/tls/key.pem', cert.key)
  await sbx.files.write('/tmp/tls/cert.pem', cert.cert)
  const js = `
const fs = require('fs')
const opts = { key: fs.readFileSync('/tmp/tls/key.pem'), cert: fs.readFileSync('/tmp/tls/cert.pem') }
const tls = require('https').createServer(opts, (req, res) => res.end('tls ' + req.url + ' proto=' + req.headers['x-forwarded-proto']))
tls.on('upgrade', (req, sock) => {
  sock.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: echo\\r\\nConnection: Upgrade\\r\\n\\r\\n')
  sock.pipe(sock)
})
tls.listen(${port}, '0.0.0.0')
require('http').createServer((req, res) => res.end('plain ' + req.url)).listen(${plain}, '0.0.0.0')
`
  await sbx.files.write('/tmp/servers.js', js)
  await sbx.commands.run('/opt/warren/bin/node /tmp/servers.js', { background: true })
  await sbx.commands.run(
    `for i in $(seq 100); do curl -skf https://127.0.0.1:${port}/ >/dev/null && curl -sf http://127.0.0.1:${plain}/ >/dev/null && exit 0; sleep 0.1; done; exit 1`,
  )
}

/** An upgraded connection through the proxy: the 101, then one echoed message. */
function upgradeEcho(host: string): Promise<{ head: string; echoed: string }> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(warren().ports.proxy, '127.0.0.1')
    let buf = ''
    let head = ''
    sock.setTimeout(10_000, () => sock.destroy(new Error('upgrade timed out')))
    sock.on('error', reject)
    sock.on('data', (d) => {
      buf += d.toString()
      if (!head && buf.includes('\r\n\r\n')) {
        head = buf.slice(0, buf.indexOf('\r\n\r\n'))
        buf = buf.slice(head.length + 4)
        sock.write('hello through TLS')
      }
      if (head && buf === 'hello through TLS') {
        sock.destroy()
        resolve({ head, echoed: buf })
      }
    })
    sock.write(`GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`)
  })
}

describe('network.httpsPorts', () => {
  it('the proxy speaks TLS to the listed ports, HTTP to the others; kept across pause/resume', async () => {
    const sbx = await create({ network: { httpsPorts: [8443] } })
    await startServers(sbx, 8443, 8080)
    const id = sbx.sandboxId
    expect((await sbx.getInfo()).network?.httpsPorts).toEqual([8443])

    const viaHost = await proxyRequest(warren(), {
      host: sandboxHost(warren(), id, 8443),
      path: '/hello',
    })
    expect(viaHost.status, viaHost.text).toBe(200)
    expect(viaHost.text).toBe('tls /hello proto=http')
    const viaHeaders = await proxyRequest(warren(), {
      path: '/h',
      headers: { 'e2b-sandbox-id': id, 'e2b-sandbox-port': '8443' },
    })
    expect(viaHeaders.text).toBe('tls /h proto=http')
    const plain = await proxyRequest(warren(), {
      host: sandboxHost(warren(), id, 8080),
      path: '/p',
    })
    expect(plain.text).toBe('plain /p')
    const ws = await upgradeEcho(sandboxHost(warren(), id, 8443))
    expect(ws.head).toMatch(/^HTTP\/1\.1 101/)
    expect(ws.echoed).toBe('hello through TLS')
    // envd's own port is unaffected: the SDK still works.
    expect((await sbx.commands.run('echo ok')).stdout).toBe('ok\n')

    expect(await pause(warren(), id)).toBe(204)
    const again = await Sandbox.connect(id, warren().sdk)
    expect((await detail(warren(), id)).network).toEqual({ httpsPorts: [8443] })
    const after = await proxyRequest(warren(), {
      host: sandboxHost(warren(), id, 8443),
      path: '/r',
    })
    expect(after.text).toBe('tls /r proto=http')
    // A network update replaces the rules but keeps the HTTPS ports (fixed at create).
    await again.updateNetwork({ denyOut: ['198.51.100.0/24'] })
    expect((await detail(warren(), id)).network).toEqual({
      denyOut: ['198.51.100.0/24'],
      httpsPorts: [8443],
    })
  })

  it('a port not listed is plain HTTP: an HTTPS server there does not answer through the proxy', async () => {
    const sbx = await create({})
    await startServers(sbx, 8443, 8080)
    const res = await proxyRequest(warren(), {
      host: sandboxHost(warren(), sbx.sandboxId, 8443),
      path: '/',
    })
    expect(res.status).not.toBe(200)
    expect(res.text).not.toContain('tls /')
  })

  it("envd's port cannot be listed", async () => {
    const err = await create({ network: { httpsPorts: [8443, 49983] } }).catch((e: unknown) => e)
    // The SDK's error for a 400 from the API.
    expect(err).toBeInstanceOf(SandboxError)
    expect(err).toMatchObject({ statusCode: 400 })
    expect(String(err)).toMatch(/httpsPorts: envd's port 49983/)
  })
})

describe('create fields the SDK sends that Warren does not implement', () => {
  // A unique label per case: no sandbox may exist with it afterwards.
  const cases: Array<[string, SandboxOpts, RegExp]> = [
    ['mcp', { mcp: { github: {} } as never }, /'mcp'/],
    ['iam', { iam: { tokens: { t: { audience: 'a', tokenType: 'jwt' } } } as never }, /'iam'/],
    [
      'network.egressProxy',
      { network: { egressProxy: { address: 'proxy.test:1080' } } },
      /'network\.egressProxy'/,
    ],
    [
      'network.rules',
      { network: { rules: { 'api.test': [{ transform: { headers: { a: 'b' } } }] } } as never },
      /'network\.rules'/,
    ],
  ]
  it.each(cases)('%s: 400 naming it, and no sandbox is made', async (label, opts, message) => {
    const err = await create({ ...opts, metadata: { case: label } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SandboxError)
    expect(err).toMatchObject({ statusCode: 400 })
    expect(String(err)).toMatch(message)
    expect(String(err)).toMatch(/unsupported field/)
    const listed = await Sandbox.list({ ...warren().sdk, query: { metadata: { case: label } } })
    expect(await listed.nextItems()).toEqual([])
  })
})
