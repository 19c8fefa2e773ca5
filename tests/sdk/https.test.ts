// Sandbox URLs as the SDK hands them out, used from the machine running
// Warren by separate Node processes started with nothing but the printed
// NODE_EXTRA_CA_CERTS: `https://` + getHost(port) and `http://` + getHost(port)
// (names resolved through `*.localhost`), a WebSocket over https, and the
// SDK itself over https without E2B_SANDBOX_URL. Names outside the domain
// are refused in the handshake, and the proxy keeps serving.

import { lookup } from 'node:dns/promises'
import { readFileSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:tls'
import { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detail, eventually } from '../helpers/api-client.js'
import { runHostNode } from '../helpers/host-node.js'
import { proxyRequest } from '../helpers/proxy-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const WEB_PORT = 8000
const HEADERS_PORT = 8001
/** Answers every request with the request headers it saw, as JSON. */
const HEADERS_SERVER = `
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(('0.0.0.0', ${HEADERS_PORT}), H).serve_forever()
`
let sbx: Sandbox
let caPath: string

beforeAll(async () => {
  const m = /export NODE_EXTRA_CA_CERTS=(\S+)/.exec(warren().stdout)
  if (!m) throw new Error(`warren up printed no NODE_EXTRA_CA_CERTS:\n${warren().stdout}`)
  caPath = m[1]!
  sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 180_000, metadata: { suite: 'https' } })
  await sbx.files.write('/tmp/www/index.html', '<p>over the proxy</p>\n')
  await sbx.files.write('/tmp/headers.py', HEADERS_SERVER)
  await sbx.commands.run(`python3 -m http.server ${WEB_PORT}`, {
    background: true,
    cwd: '/tmp/www',
  })
  await sbx.commands.run('python3 /tmp/headers.py', { background: true })
  for (const port of [WEB_PORT, HEADERS_PORT]) {
    await eventually(
      `port ${port} answers`,
      async () => (await proxyRequest(warren(), { host: sbx.getHost(port) })).status === 200,
      15_000,
      100,
    )
  }
})

afterAll(async () => {
  await sbx?.kill().catch(() => {})
})

describe('sandbox URLs from the host', () => {
  it('warren up prints a root-only CA and a bundle for SSL_CERT_FILE / CURL_CA_BUNDLE', () => {
    expect(caPath).toBe(`${warren().dataDir}/pki/proxy-ca/cert.pem`)
    expect(readFileSync(caPath, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/)
    const bundle = /export SSL_CERT_FILE=(\S+)/.exec(warren().stdout)?.[1]
    expect(bundle).toBe(`${warren().dataDir}/pki/proxy-ca-bundle.pem`)
    expect(warren().stdout).toContain(`export CURL_CA_BUNDLE=${bundle}`)
    expect(statSync(caPath).mode & 0o777).toBe(0o600)
    expect(statSync(`${warren().dataDir}/pki/proxy-ca/key.pem`).mode & 0o777).toBe(0o600)
    expect(statSync(`${warren().dataDir}/pki/proxy-ca`).mode & 0o777).toBe(0o700)
  })

  it('resolves {port}-{id}.localhost to loopback on this host (nss-myhostname, setup.sh)', async () => {
    const addresses = await lookup(sbx.getHost(WEB_PORT).replace(/:\d+$/, ''), { all: true })
    expect(addresses.length).toBeGreaterThan(0)
    for (const a of addresses) expect(['127.0.0.1', '::1']).toContain(a.address)
  })

  it('https:// and http:// + getHost(port) work from a Node process with only NODE_EXTRA_CA_CERTS', async () => {
    const host = sbx.getHost(WEB_PORT)
    expect(host).toBe(`${WEB_PORT}-${sbx.sandboxId}.localhost:${warren().ports.proxy}`)
    const out = await runHostNode(
      `
      import { get } from 'node:https'
      const [httpsUrl, httpUrl] = process.argv.slice(1)
      const viaFetch = async (u) => { const r = await fetch(u); return { status: r.status, body: await r.text() } }
      const viaHttps = (u) => new Promise((resolve, reject) =>
        get(u, (r) => { let body = ''; r.on('data', (d) => (body += d)); r.on('end', () => resolve({ status: r.statusCode, body })) }).on('error', reject))
      console.log(JSON.stringify({
        fetchHttps: await viaFetch(httpsUrl),
        getHttps: await viaHttps(httpsUrl),
        fetchHttp: await viaFetch(httpUrl),
      }))
      `,
      [`https://${host}/index.html`, `http://${host}/index.html`],
      { NODE_EXTRA_CA_CERTS: caPath },
    )
    const page = { status: 200, body: '<p>over the proxy</p>\n' }
    expect(out).toEqual({ fetchHttps: page, getHttps: page, fetchHttp: page })
  })

  it('without the CA, Node refuses the certificate (the test can fail)', async () => {
    const out = await runHostNode(
      `
      try { await fetch(process.argv[1]); console.log(JSON.stringify({ ok: true })) }
      catch (err) { console.log(JSON.stringify({ ok: false, code: err.cause?.code })) }
      `,
      [`https://${sbx.getHost(WEB_PORT)}/`],
      {},
    )
    expect(out).toEqual({ ok: false, code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })
  })

  it('the sandbox sees X-Forwarded-Proto https for https clients, http otherwise', async () => {
    const out = (await runHostNode(
      `
      const [a, b] = process.argv.slice(1)
      console.log(JSON.stringify([await (await fetch(a)).json(), await (await fetch(b)).json()]))
      `,
      [`https://${sbx.getHost(HEADERS_PORT)}/`, `http://${sbx.getHost(HEADERS_PORT)}/`],
      { NODE_EXTRA_CA_CERTS: caPath },
    )) as Array<Record<string, string>>
    expect(out[0]).toMatchObject({
      'x-forwarded-proto': 'https',
      'x-forwarded-host': sbx.getHost(HEADERS_PORT),
    })
    expect(out[1]).toMatchObject({ 'x-forwarded-proto': 'http' })
  })

  it('a WebSocket over https (wss://) reaches the sandbox through envd /tunnel', async () => {
    const token = (await detail(warren(), sbx.sandboxId)).envdAccessToken!
    const out = await runHostNode(
      `
      import WebSocket from 'ws'
      const [url, token] = process.argv.slice(1)
      const ws = new WebSocket(url, { headers: { 'X-Access-Token': token } })
      let got = ''
      ws.on('open', () => ws.send('GET /index.html HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n'))
      ws.on('message', (m) => { got += m; if (got.includes('over the proxy')) ws.close() })
      ws.on('close', () => console.log(JSON.stringify({ got })))
      ws.on('error', (err) => console.log(JSON.stringify({ error: err.message })))
      `,
      [`wss://${sbx.getHost(49983)}/tunnel?port=${WEB_PORT}`, token],
      { NODE_EXTRA_CA_CERTS: caPath },
    )
    expect((out as { got: string }).got).toMatch(/^HTTP\/1\.0 200 OK[\s\S]*<p>over the proxy<\/p>/)
  })

  it('the SDK works over https with no E2B_SANDBOX_URL at all', async () => {
    const out = await runHostNode(
      `
      import { Sandbox } from 'e2b'
      const sbx = await Sandbox.connect(process.argv[1])
      const run = await sbx.commands.run('echo over https; cat /tmp/www/index.html')
      console.log(JSON.stringify({ envdApiUrl: sbx.envdApiUrl, stdout: run.stdout }))
      `,
      [sbx.sandboxId],
      { NODE_EXTRA_CA_CERTS: caPath, E2B_API_URL: warren().apiUrl, E2B_API_KEY: warren().apiKey },
    )
    expect(out).toEqual({
      envdApiUrl: `https://49983-${sbx.sandboxId}.localhost:${warren().ports.proxy}`,
      stdout: 'over https\n<p>over the proxy</p>\n',
    })
  })

  it('the API and the proxy answer on ::1 as well as 127.0.0.1', async () => {
    const get = (host: string, port: number, path: string) =>
      new Promise<number>((resolve, reject) => {
        const r = request({ host, port, path, headers: { host: sbx.getHost(WEB_PORT) } }, (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        })
        r.on('error', reject)
        r.end()
      })
    expect(await get('::1', warren().ports.proxy, '/index.html')).toBe(200)
    expect(await get('::1', warren().ports.api, '/health')).toBe(200)
    expect(await get('127.0.0.1', warren().ports.api, '/health')).toBe(200)
  })

  it('refuses a TLS handshake for a name outside the domain, cleanly', async () => {
    const ca = readFileSync(caPath, 'utf8')
    for (const servername of ['example.com', `${WEB_PORT}-${sbx.sandboxId}.example.com`]) {
      const error = await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: warren().ports.proxy, servername, ca })
        s.once('secureConnect', () => {
          s.destroy()
          resolve('connected')
        })
        s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
      })
      // The TLS alert unrecognized_name: not a reset, not a crash.
      expect(error, servername).toBe('ERR_SSL_TLSV1_UNRECOGNIZED_NAME')
    }
    // Still serving, over both.
    const out = await runHostNode(
      `console.log(JSON.stringify((await fetch(process.argv[1])).status))`,
      [`https://${sbx.getHost(WEB_PORT)}/`],
      { NODE_EXTRA_CA_CERTS: caPath },
    )
    expect(out).toBe(200)
    expect((await proxyRequest(warren(), { host: sbx.getHost(WEB_PORT) })).status).toBe(200)
  })
})
