// Ingress rules through the edge proxy: allowed and denied CIDRs and port
// ranges against the client address the edge derives, live replacement by
// PUT, spoofing attempts (X-Forwarded-For and Warren's own client header sent
// by a client, with no trusted hop and behind one), IPv6 clients refused
// where IPv4 deny rules apply (fail closed), and the masked Host a server in
// the sandbox sees. Clients vary their address by binding to 127.0.0.x.
//
// The all-in-one edge (`warren up`, listening on :: so that ::1 can connect)
// hands requests to its node in-process; a separate `warren proxy` with one
// trusted hop reaches the same node through the node proxy's internal headers.
import { type ChildProcess, spawn } from 'node:child_process'
import { request } from 'node:http'
import type { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, eventually } from '../helpers/api-client.js'
import { CLI } from '../helpers/cli.js'
import { createRaw, handle } from '../helpers/lifecycle.js'
import { freePort } from '../helpers/node-fixture.js'
import { fixtureSecret } from '../helpers/orchestrator-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren({ env: { WARREN_LISTEN_HOST: '::' } })
const PORTS = [8000, 8001, 9000, 9500] as const

/** Answers every request with what it received: Host, X-Forwarded-*, Warren's headers. */
const ECHO = `import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            'port': self.server.server_port,
            'host': self.headers.get('host'),
            'xfh': self.headers.get('x-forwarded-host'),
            'xff': self.headers.get('x-forwarded-for'),
            'internal': sorted(k.lower() for k in self.headers.keys() if k.lower().startswith('x-warren')),
        }).encode()
        self.send_response(200)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
servers = [ThreadingHTTPServer(('0.0.0.0', int(p)), H) for p in sys.argv[1:]]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
`

/** The rules the suite starts from (and returns to). */
const RULES = {
  denyIn: ['0.0.0.0/0:8000-9000'],
  allowIn: ['127.0.0.2', '127.0.0.3:8000', '127.0.0.4/31:8000-8001'],
  maskRequestHost: 'internal.test:${PORT}',
}

const UPGRADE = {
  connection: 'Upgrade',
  upgrade: 'websocket',
  'sec-websocket-version': '13',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
}

let sbx: Sandbox
let trusted: { proc: ChildProcess; port: number } | undefined

interface Echo {
  port: number
  host: string
  xfh: string
  xff: string
  internal: string[]
}

interface Hit {
  status: number
  body: unknown
}

/** GET / on a sandbox port through an edge proxy, from a chosen client address. */
function hit(
  port: number,
  from: string,
  opts: { via?: 'edge' | 'trusted'; headers?: Record<string, string>; sandboxId?: string } = {},
): Promise<Hit> {
  const id = opts.sandboxId ?? sbx.sandboxId
  const proxyPort = opts.via === 'trusted' ? trusted!.port : warren().ports.proxy
  const v6 = from.includes(':')
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: v6 ? '::1' : '127.0.0.1',
        port: proxyPort,
        localAddress: from,
        path: '/',
        headers: { host: `${port}-${id}.localhost:${proxyPort}`, ...opts.headers },
        agent: false,
      },
      (res) => {
        let text = ''
        res.on('data', (c: Buffer) => {
          text += c.toString()
        })
        res.on('end', () => {
          let body: unknown = text
          try {
            body = JSON.parse(text)
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body })
        })
      },
    )
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')))
    req.end()
  })
}

/** Status per client and port: `{ '127.0.0.2': [200, 200, ...] }` in PORTS order. */
async function statuses(clients: string[], opts: Parameters<typeof hit>[2] = {}) {
  const out: Record<string, number[]> = {}
  for (const c of clients) {
    out[c] = await Promise.all(PORTS.map(async (p) => (await hit(p, c, opts)).status))
  }
  return out
}

async function put(body: Record<string, unknown>) {
  const res = await api(warren(), 'PUT', `/sandboxes/${sbx.sandboxId}/network`, { json: body })
  expect(res.status, res.text).toBe(204)
}

beforeAll(async () => {
  const created = await createRaw(warren(), {
    timeout: 600,
    network: RULES,
    metadata: { suite: 'network-ingress' },
  })
  sbx = handle(warren(), created)
  await sbx.files.write('/tmp/echo.py', ECHO)
  await sbx.commands.run(`python3 /tmp/echo.py ${PORTS.join(' ')}`, { background: true })
  await eventually(
    'the echo servers answer',
    async () => (await hit(9500, '127.0.0.2').catch(() => ({ status: 0 }))).status === 200,
    15_000,
    100,
  )
  // A second edge proxy, behind one trusted hop, on the same API.
  const port = await freePort()
  const proc = spawn(process.execPath, [CLI, 'proxy'], {
    env: {
      ...process.env,
      WARREN_PROXY_PORT: String(port),
      WARREN_LISTEN_HOST: '127.0.0.1',
      WARREN_API_INTERNAL_URL: `http://127.0.0.1:${warren().ports.internal}`,
      WARREN_TRUSTED_HOPS: '1',
      WARREN_CLUSTER_SECRET_FILE: `${warren().dataDir}/cluster/secret`,
    },
    stdio: 'ignore',
  })
  trusted = { proc, port }
  await eventually(
    'the trusted-hop proxy routes to the sandbox',
    async () =>
      (await hit(9500, '127.0.0.9', { via: 'trusted' }).catch(() => ({ status: 0 }))).status ===
      200,
    15_000,
    100,
  )
})

afterAll(async () => {
  const proc = trusted?.proc
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once('exit', r))
    proc.kill('SIGTERM')
    await exited
  }
  await sbx?.kill().catch(() => {})
})

describe('ingress rules', () => {
  it('allow and deny by client CIDR and port range; allow wins', async () => {
    expect(
      await statuses([
        '127.0.0.1',
        '127.0.0.2',
        '127.0.0.3',
        '127.0.0.4',
        '127.0.0.5',
        '127.0.0.6',
      ]),
    ).toEqual({
      // ports:     8000 8001 9000 9500 (9500: no rule names it)
      '127.0.0.1': [403, 403, 403, 200],
      '127.0.0.2': [200, 200, 200, 200],
      '127.0.0.3': [200, 403, 403, 200],
      '127.0.0.4': [200, 200, 403, 200],
      '127.0.0.5': [200, 200, 403, 200],
      '127.0.0.6': [403, 403, 403, 200],
    })
    const denied = await hit(8001, '127.0.0.3')
    expect(denied.body).toEqual({
      sandboxId: sbx.sandboxId,
      code: 403,
      port: 8001,
      message: expect.stringMatching(/ingress rules/),
    })
    // WebSocket upgrades meet the same rules.
    expect((await hit(8000, '127.0.0.6', { headers: UPGRADE })).status).toBe(403)
    expect((await hit(8000, '127.0.0.2', { headers: UPGRADE })).status).not.toBe(403)
    // envd's port is outside the denied range: the SDK (from 127.0.0.1) still works.
    expect((await sbx.commands.run('echo fine')).stdout).toBe('fine\n')
  })

  it('GET returns the config, and PUT replaces ingress rules like the rest', async () => {
    const d = await api(warren(), 'GET', `/sandboxes/${sbx.sandboxId}`)
    expect(d.body).toMatchObject({ network: RULES })
    await put({ denyIn: ['127.0.0.6/32', '127.0.0.2/32:8001'] })
    expect(await statuses(['127.0.0.2', '127.0.0.3', '127.0.0.6'])).toEqual({
      '127.0.0.2': [200, 403, 200, 200],
      '127.0.0.3': [200, 200, 200, 200], // its allow-only-8000 rule and the catch-all are gone
      '127.0.0.6': [403, 403, 403, 403],
    })
    await put({})
    expect(await statuses(['127.0.0.6'])).toEqual({ '127.0.0.6': [200, 200, 200, 200] })
    await put(RULES)
    expect(await statuses(['127.0.0.3'])).toEqual({ '127.0.0.3': [200, 403, 403, 200] })
  })
})

describe('client addresses cannot be spoofed', () => {
  it('with no trusted hop, X-Forwarded-For and x-warren-client-ip from the client are ignored', async () => {
    const spoof = { 'x-forwarded-for': '127.0.0.2', 'x-warren-client-ip': '127.0.0.2' }
    expect((await hit(8000, '127.0.0.6', { headers: spoof })).status).toBe(403)
    expect(
      (await hit(8000, '127.0.0.6', { headers: { 'x-warren-client-ip': '127.0.0.2' } })).status,
    ).toBe(403)
    // Claiming to be a denied address does not hurt an allowed one either.
    const allowed = await hit(8001, '127.0.0.2', {
      headers: { 'x-forwarded-for': '127.0.0.6', 'x-warren-client-ip': '127.0.0.6' },
    })
    expect(allowed.status).toBe(200)
    const seen = allowed.body as Echo
    // The sandbox sees the chain with the real peer appended, and none of Warren's headers.
    expect(seen.xff).toBe('127.0.0.6, 127.0.0.2')
    expect(seen.internal).toEqual([])
  })

  it('behind one trusted hop, only the right-most X-Forwarded-For entry counts', async () => {
    const via = 'trusted' as const
    const lb = '127.0.0.9' // the "load balancer" in front: its own address is not the client's
    const xff = (v: string) => ({ headers: { 'x-forwarded-for': v } })
    expect((await hit(8000, lb, { via, ...xff('127.0.0.6, 127.0.0.2') })).status).toBe(200)
    expect((await hit(8000, lb, { via, ...xff('127.0.0.2, 127.0.0.6') })).status).toBe(403)
    expect((await hit(8001, lb, { via, ...xff('127.0.0.3') })).status).toBe(403)
    expect((await hit(8000, lb, { via, ...xff('127.0.0.3') })).status).toBe(200)
    // No chain: the client cannot be told, refused wherever a deny rule applies.
    expect((await hit(8000, lb, { via })).status).toBe(403)
    expect((await hit(9500, lb, { via })).status).toBe(200)
    // Warren's own header from the client is replaced, not believed.
    const spoof = { 'x-forwarded-for': '127.0.0.6', 'x-warren-client-ip': '127.0.0.2' }
    expect((await hit(8000, lb, { via, headers: spoof })).status).toBe(403)
    const ok = await hit(8000, lb, {
      via,
      headers: { 'x-forwarded-for': '127.0.0.2', 'x-warren-client-ip': '127.0.0.6' },
    })
    expect(ok.status).toBe(200)
    expect((ok.body as Echo).internal).toEqual([])
  })
})

describe('the node proxy', () => {
  /** A request straight to the node proxy, claiming to be an edge that vouches for 127.0.0.2. */
  function direct(from: string, port: number, secret?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: from,
          port: warren().ports.nodeProxy,
          localAddress: from,
          path: '/',
          headers: {
            host: `${port}-${sbx.sandboxId}.localhost`,
            'x-warren-sandbox-id': sbx.sandboxId,
            'x-warren-sandbox-port': String(port),
            'x-warren-client-ip': '127.0.0.2',
            ...(secret ? { 'x-warren-cluster-secret': secret } : {}),
          },
          agent: false,
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        },
      )
      req.on('error', reject)
      req.end()
    })
  }

  it("believes an edge's internal headers only with the cluster secret, even from loopback", async () => {
    expect(await direct('127.0.0.1', 8000)).toBe(401)
    expect(await direct('127.0.0.1', 8000, 'not-the-cluster-secret')).toBe(403)
    // With it, the vouched-for client (127.0.0.2, allowed on 8000) counts.
    expect(await direct('127.0.0.1', 8000, fixtureSecret(warren()))).toBe(200)
  })
})

describe('IPv6 clients', () => {
  it('are refused where an IPv4 deny rule applies (fail closed), served elsewhere', async () => {
    expect(await statuses(['::1'])).toEqual({ '::1': [403, 403, 403, 200] })
  })
})

describe('maskRequestHost', () => {
  it('is the Host the sandbox sees, with the port substituted; the original is in X-Forwarded-Host', async () => {
    for (const port of [8000, 9500]) {
      const r = await hit(port, '127.0.0.2')
      expect(r.status).toBe(200)
      expect(r.body).toMatchObject({
        port,
        host: `internal.test:${port}`,
        xfh: `${port}-${sbx.sandboxId}.localhost:${warren().ports.proxy}`,
      })
    }
    // The trusted-hop edge reaches the node over HTTP: the same masking.
    const viaTrusted = await hit(8000, '127.0.0.9', {
      via: 'trusted',
      headers: { 'x-forwarded-for': '127.0.0.2' },
    })
    expect(viaTrusted.body).toMatchObject({
      host: 'internal.test:8000',
      xfh: `8000-${sbx.sandboxId}.localhost:${trusted!.port}`,
    })
  })

  it('changes with PUT and goes away when a PUT omits it', async () => {
    await put({ ...RULES, maskRequestHost: 'svc-${PORT}.masked.test' })
    expect((await hit(8001, '127.0.0.2')).body).toMatchObject({ host: 'svc-8001.masked.test' })
    await put({ denyIn: RULES.denyIn, allowIn: RULES.allowIn })
    const host = `8001-${sbx.sandboxId}.localhost:${warren().ports.proxy}`
    expect((await hit(8001, '127.0.0.2')).body).toMatchObject({ host, xfh: host })
  })
})

describe('allowPublicTraffic', () => {
  it('is kept by PUT, and the traffic token and ingress rules both apply', async () => {
    const created = await createRaw(warren(), {
      timeout: 300,
      network: { allowPublicTraffic: false, denyIn: ['127.0.0.6/32'] },
      metadata: { suite: 'network-ingress' },
    })
    const other = handle(warren(), created)
    try {
      const token = created.trafficAccessToken
      expect(token).toEqual(expect.any(String))
      await other.files.write('/tmp/echo.py', ECHO)
      await other.commands.run('python3 /tmp/echo.py 9500', { background: true })
      const withToken = {
        sandboxId: other.sandboxId,
        headers: { 'e2b-traffic-access-token': token! },
      }
      await eventually(
        'the echo server answers',
        async () =>
          (await hit(9500, '127.0.0.2', withToken).catch(() => ({ status: 0 }))).status === 200,
        15_000,
        100,
      )
      expect((await hit(9500, '127.0.0.2', { sandboxId: other.sandboxId })).status).toBe(403)
      expect((await hit(9500, '127.0.0.6', withToken)).status).toBe(403)
      const res = await api(warren(), 'PUT', `/sandboxes/${other.sandboxId}/network`, {
        json: { maskRequestHost: 'kept.test' },
      })
      expect(res.status, res.text).toBe(204)
      expect((await hit(9500, '127.0.0.2', { sandboxId: other.sandboxId })).status).toBe(403)
      expect(await hit(9500, '127.0.0.6', withToken)).toMatchObject({
        status: 200,
        body: { host: 'kept.test' },
      })
      const d = await api(warren(), 'GET', `/sandboxes/${other.sandboxId}`)
      expect(d.body).toMatchObject({
        network: { allowPublicTraffic: false, maskRequestHost: 'kept.test' },
      })
      expect((d.body as { network: object }).network).not.toHaveProperty('denyIn')
    } finally {
      await other.kill().catch(() => {})
    }
  })
})
