// No internal port serves whoever merely connects: the API's internal RPC
// (and /metrics), the orchestrator's RPC and its node proxy each want the
// cluster secret (over TLS here), and the node proxy judges a caller that is
// not an authenticated edge by its own address and the traffic token.
import { Sandbox } from 'e2b'
import { beforeAll, describe, expect, it } from 'vitest'
import { api, eventually } from '../helpers/api-client.js'
import { internalRequest, useCluster } from '../helpers/cluster-fixture.js'

const SCRAPE_TOKEN = 'auth-test-scrape-token-0123456789'
const cluster = useCluster({ nodes: 1, apiEnv: { WARREN_METRICS_TOKEN: SCRAPE_TOKEN } })
const SECRET_HEADER = 'x-warren-cluster-secret'
const WRONG = 'this-is-not-the-cluster-secret'

const ECHO = `import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            'xff': self.headers.get('x-forwarded-for'),
            'internal': sorted(k.lower() for k in self.headers.keys() if k.lower().startswith('x-warren')),
        }).encode()
        self.send_response(200)
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

/** A Connect unary call as JSON. */
const rpc = (base: string, path: string, headers: Record<string, string> = {}) =>
  internalRequest(`${base}/${path}`, cluster().ca, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: '{}',
  })

function expectRefused(res: { status: number; body: string }, status: 401 | 403) {
  expect(res.status, res.body).toBe(status)
  expect(JSON.parse(res.body)).toEqual({ code: status, message: expect.any(String) })
}

describe("the API's internal port", () => {
  const calls = [
    'warren.api.v1.ProxyService/GetRoute',
    'warren.api.v1.ProxyService/ResumeSandbox',
    'warren.api.v1.ProxyService/KeepAliveSandbox',
    'warren.api.v1.NodeService/Heartbeat',
    'warren.api.v1.NodeService/ListNodes',
  ]

  it('refuses every RPC without the cluster secret (401) and with a wrong one (403)', async () => {
    for (const call of calls) {
      expectRefused(await rpc(cluster().internalUrl, call), 401)
      expectRefused(await rpc(cluster().internalUrl, call, { [SECRET_HEADER]: WRONG }), 403)
      expectRefused(
        await rpc(cluster().internalUrl, call, { authorization: `Bearer ${WRONG}` }),
        403,
      )
    }
    // The secret opens it.
    const ok = await rpc(cluster().internalUrl, 'warren.api.v1.NodeService/ListNodes', {
      [SECRET_HEADER]: cluster().secret,
    })
    expect(ok.status, ok.body).toBe(200)
    expect(JSON.parse(ok.body).nodes).toHaveLength(1)
  })

  it('serves /metrics with the secret or the scrape token only', async () => {
    const metrics = (headers: Record<string, string>) =>
      internalRequest(`${cluster().internalUrl}/metrics`, cluster().ca, { headers })
    expectRefused(await metrics({}), 401)
    expectRefused(await metrics({ authorization: `Bearer ${WRONG}` }), 403)
    expect((await metrics({ [SECRET_HEADER]: cluster().secret })).status).toBe(200)
    const scraped = await metrics({ authorization: `Bearer ${SCRAPE_TOKEN}` })
    expect(scraped.status).toBe(200)
    expect(scraped.body).toContain('warren_sandboxes_killed_total')
    // The scrape token is good for /metrics alone.
    expectRefused(
      await rpc(cluster().internalUrl, 'warren.api.v1.NodeService/ListNodes', {
        authorization: `Bearer ${SCRAPE_TOKEN}`,
      }),
      403,
    )
  })
})

describe("the orchestrator's RPC port", () => {
  it('refuses callers without the cluster secret, RPC and volume files alike', async () => {
    const base = cluster().nodes[0]!.rpcUrl
    const list = 'warren.orchestrator.v1.OrchestratorService/List'
    expectRefused(await rpc(base, list), 401)
    expectRefused(await rpc(base, list, { [SECRET_HEADER]: WRONG }), 403)
    expectRefused(
      await internalRequest(`${base}/volumecontent/vol-x/files?path=/`, cluster().ca),
      401,
    )
    const ok = await rpc(base, list, { [SECRET_HEADER]: cluster().secret })
    expect(ok.status, ok.body).toBe(200)
  })
})

describe('the node proxy', () => {
  let sandboxId = ''
  let token = ''
  const node = (port: number, headers: Record<string, string>) =>
    internalRequest(`${cluster().nodes[0]!.proxyUrl}/`, cluster().ca, {
      headers: { host: `${port}-${sandboxId}.sandbox.test`, ...headers },
    })
  const asEdge = (port: number, clientIp: string, secret = cluster().secret) =>
    internalRequest(`${cluster().nodes[0]!.proxyUrl}/`, cluster().ca, {
      headers: {
        host: 'anything.test',
        [SECRET_HEADER]: secret,
        'x-warren-sandbox-id': sandboxId,
        'x-warren-sandbox-port': String(port),
        'x-warren-client-ip': clientIp,
      },
    })

  beforeAll(async () => {
    // No public traffic; port 8000 only from 10.99.0.1 (an address no packet goes to: it is only named).
    const res = await api(cluster(), 'POST', '/v2/sandboxes', {
      json: {
        templateID: 'base',
        timeout: 300,
        network: {
          allowPublicTraffic: false,
          denyIn: ['0.0.0.0/0:8000'],
          allowIn: ['10.99.0.1:8000'],
        },
      },
    })
    expect(res.status, res.text).toBe(201)
    const created = res.body as { sandboxID: string; trafficAccessToken: string }
    sandboxId = created.sandboxID
    token = created.trafficAccessToken
    expect(token).toBeTruthy()
    const sbx = await Sandbox.connect(sandboxId, { ...cluster().sdk })
    await sbx.files.write('/tmp/echo.py', ECHO)
    await sbx.commands.run('python3 /tmp/echo.py 8000 8001', { background: true })
    let last: unknown
    await eventually(
      'the echo servers answer',
      async () => {
        last = await asEdge(8001, '10.99.0.1').catch((err: unknown) => err)
        return (last as { status?: number }).status === 200
      },
      15_000,
      100,
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}; last answer: ${last instanceof Error ? `${last.message} ${String((last as NodeJS.ErrnoException).code)}` : JSON.stringify(last)}`,
      )
    })
  })

  it('refuses internal headers without the cluster secret (401) or with a wrong one (403)', async () => {
    expectRefused(await asEdge(8001, '10.99.0.1', ''), 401)
    expectRefused(await asEdge(8001, '10.99.0.1', WRONG), 403)
    expectRefused(
      await node(8001, { 'x-warren-client-ip': '10.99.0.1', 'e2b-traffic-access-token': token }),
      401,
    )
  })

  it('asks a direct caller for the traffic token itself', async () => {
    const none = await node(8001, {})
    expect(none.status, none.body).toBe(403)
    expect(JSON.parse(none.body)).toMatchObject({ sandboxId, code: 403, port: 8001 })
    expect((await node(8001, { 'e2b-traffic-access-token': 'wrong-token' })).status).toBe(403)
    const ok = await node(8001, { 'e2b-traffic-access-token': token })
    expect(ok.status, ok.body).toBe(200)
  })

  it('judges a direct caller by its own address: X-Forwarded-For is not believed', async () => {
    const spoofed = await node(8000, {
      'e2b-traffic-access-token': token,
      'x-forwarded-for': '10.99.0.1',
    })
    expect(spoofed.status, spoofed.body).toBe(403)
    expect(JSON.parse(spoofed.body).message).toMatch(/ingress rules/)
    // Where it is let through, the sandbox sees the caller's address, not the claim.
    const echoed = await node(8001, {
      'e2b-traffic-access-token': token,
      'x-forwarded-for': '10.99.0.1',
    })
    expect(JSON.parse(echoed.body).xff).toBe('127.0.0.1')
    // An authenticated edge's client address is believed; neither the secret
    // nor any other internal header reaches the sandbox.
    const fromEdge = await asEdge(8000, '10.99.0.1')
    expect(fromEdge.status).toBe(200)
    expect(JSON.parse(fromEdge.body).internal).toEqual([])
    expect((await asEdge(8000, '10.99.0.2')).status).toBe(403)
  })
})
