// The edge proxy with an operator's certificate (WARREN_TLS_CERT/KEY) for
// `*.{domain}`, here issued by a CA of the test's own for the domain
// `sbx.warren.test`: https to a sandbox host is served with it, the proxy
// makes no CA of its own, and names outside the domain are refused.
import { once } from 'node:events'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { createCertificateAuthority } from '@warren/shared/pki'
import { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const DOMAIN = 'sbx.warren.test'
const dir = mkdtempSync('/tmp/warren-operator-tls-')
const env = {
  WARREN_DOMAIN: DOMAIN,
  WARREN_TLS_CERT: join(dir, 'fullchain.pem'),
  WARREN_TLS_KEY: join(dir, 'privkey.pem'),
}
let testCa: string

// Before `warren up` starts (hooks run in order): the operator's files.
beforeAll(async () => {
  const { ca } = await createCertificateAuthority({ commonName: 'operator test CA' })
  const leaf = await ca.issue({
    commonName: `*.${DOMAIN}`,
    dnsNames: [`*.${DOMAIN}`],
    usages: ['server'],
  })
  writeFileSync(env.WARREN_TLS_CERT, leaf.certPem)
  writeFileSync(env.WARREN_TLS_KEY, leaf.keyPem, { mode: 0o600 })
  testCa = ca.certPem
})
const warren = useWarren({ env })
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let sbx: Sandbox
beforeAll(async () => {
  sbx = await Sandbox.create({
    ...warren().sdk,
    timeoutMs: 120_000,
    metadata: { suite: 'https-operator' },
  })
  await sbx.files.write('/tmp/www/index.html', 'operator cert\n')
  await sbx.commands.run('python3 -m http.server 8000', { background: true, cwd: '/tmp/www' })
})
afterAll(async () => {
  await sbx?.kill().catch(() => {})
})

/** An https GET to the proxy's port for `host`, trusting only the test CA. */
function httpsGet(
  host: string,
): Promise<{ status: number; body: string; san: string | undefined }> {
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: '127.0.0.1',
        port: warren().ports.proxy,
        servername: host,
        headers: { host },
        ca: testCa,
        path: '/index.html',
        agent: false,
      },
      (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            san: (res.socket as import('node:tls').TLSSocket).getPeerCertificate().subjectaltname,
          }),
        )
      },
    )
    r.on('error', reject)
    r.end()
  })
}

describe("an operator's certificate", () => {
  it('serves https for sandbox hosts of the domain with it', async () => {
    const host = sbx.getHost(8000)
    expect(host).toBe(`8000-${sbx.sandboxId}.${DOMAIN}`)
    await eventually(
      'the server answers',
      async () => (await httpsGet(host)).status === 200,
      15_000,
      100,
    )
    expect(await httpsGet(host)).toEqual({
      status: 200,
      body: 'operator cert\n',
      san: `DNS:*.${DOMAIN}`,
    })
  })

  it('makes no CA of its own and prints none', () => {
    expect(existsSync(join(warren().dataDir, 'pki', 'proxy-ca'))).toBe(false)
    expect(warren().stdout).not.toContain('NODE_EXTRA_CA_CERTS')
  })

  it('refuses names outside the domain with a TLS alert', async () => {
    const s = connect({
      host: '127.0.0.1',
      port: warren().ports.proxy,
      servername: 'example.com',
      ca: testCa,
    })
    const [err] = await once(s, 'error')
    expect((err as NodeJS.ErrnoException).code).toBe('ERR_SSL_TLSV1_UNRECOGNIZED_NAME')
    expect((await httpsGet(sbx.getHost(8000))).status).toBe(200)
  })
})
