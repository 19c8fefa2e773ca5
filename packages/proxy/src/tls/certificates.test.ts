import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { checkServerIdentity, connect, createServer, type PeerCertificate } from 'node:tls'
import { createCertificateAuthority } from '@warren/shared/pki'
import { afterEach, describe, expect, it } from 'vitest'
import { edgeCertificates } from './certificates.js'

const ID = 'abcdefghij0123456789'
const dirs: string[] = []
const tmp = () => {
  const d = mkdtempSync('/tmp/warren-edge-tls-')
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

type Outcome = { ok: true; subjectaltname: string | undefined } | { ok: false; error: string }

/** One handshake against a TLS server with `options`, as a client trusting `ca`. */
async function handshake(
  options: Parameters<typeof createServer>[0],
  client: { ca?: string; servername?: string; host?: string },
): Promise<Outcome> {
  const server = createServer(options, (s) => s.end())
  const clientErrors: Error[] = []
  server.on('tlsClientError', (err) => clientErrors.push(err))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    return await new Promise<Outcome>((resolve) => {
      const socket = connect({
        port: (server.address() as AddressInfo).port,
        host: '127.0.0.1',
        ...client,
      })
      socket.once('secureConnect', () => {
        resolve({ ok: true, subjectaltname: socket.getPeerCertificate().subjectaltname })
        socket.destroy()
      })
      socket.once('error', (err: NodeJS.ErrnoException) =>
        resolve({ ok: false, error: err.code ?? err.message }),
      )
    })
  } finally {
    server.close()
  }
}

describe("the proxy's own CA", () => {
  it('signs a leaf per sandbox host that Node accepts with only the CA trusted', async () => {
    const dataDir = tmp()
    const { certificates, tlsOptions } = await edgeCertificates({
      dataDir,
      domain: 'localhost:3002',
    })
    expect(certificates.caCertPath).toBe(join(dataDir, 'pki/proxy-ca/cert.pem'))
    expect(statSync(join(dataDir, 'pki/proxy-ca/key.pem')).mode & 0o777).toBe(0o600)
    const ca = readFileSync(certificates.caCertPath!, 'utf8')
    const host = `8000-${ID}.localhost`
    expect(await handshake(tlsOptions, { ca, servername: host })).toEqual({
      ok: true,
      subjectaltname: `DNS:${host}`,
    })
    // Upper case in the name is the same name.
    expect(await handshake(tlsOptions, { ca, servername: `49983-${ID}.LocalHost` })).toMatchObject({
      ok: true,
    })
    // Without SNI (an address in the URL): the loopbacks and localhost.
    expect(await handshake(tlsOptions, { ca })).toEqual({
      ok: true,
      subjectaltname: 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    })
    expect(await handshake(tlsOptions, { ca, servername: 'localhost' })).toMatchObject({ ok: true })
  })

  it('refuses a handshake for a name outside the domain, and keeps serving', async () => {
    const { certificates, tlsOptions } = await edgeCertificates({
      dataDir: tmp(),
      domain: 'localhost:3002',
    })
    const ca = readFileSync(certificates.caCertPath!, 'utf8')
    for (const servername of [
      'example.com',
      `8000-${ID}.example.com`,
      'x.localhost',
      `a.8000-${ID}.localhost`,
    ]) {
      // Here the SNI callback refuses (Node then closes the connection); the
      // proxy's listener answers most such hellos earlier, with an alert (same-port.test.ts).
      expect(await handshake(tlsOptions, { ca, servername }), servername).toEqual({
        ok: false,
        error: 'ECONNRESET',
      })
    }
    expect(await handshake(tlsOptions, { ca, servername: `8000-${ID}.localhost` })).toMatchObject({
      ok: true,
    })
  })

  it('why a leaf per name: Node refuses a *.localhost wildcard', async () => {
    const { ca } = await createCertificateAuthority({ commonName: 'wildcard test' })
    const wildcard = await ca.issue({
      commonName: '*.localhost',
      dnsNames: ['*.localhost'],
      usages: ['server'],
    })
    const legacy = new X509Certificate(wildcard.certPem).toLegacyObject() as PeerCertificate
    expect(checkServerIdentity(`8000-${ID}.localhost`, legacy)).toBeInstanceOf(Error)
    const exact = await ca.issue({
      commonName: 'x',
      dnsNames: [`8000-${ID}.localhost`],
      usages: ['server'],
    })
    const exactLegacy = new X509Certificate(exact.certPem).toLegacyObject() as PeerCertificate
    expect(checkServerIdentity(`8000-${ID}.localhost`, exactLegacy)).toBeUndefined()
  })

  it('is made once per data directory and reused; refused for another domain', async () => {
    const dataDir = tmp()
    const first = await edgeCertificates({ dataDir, domain: 'localhost:3002' })
    const pem = readFileSync(first.certificates.caCertPath!, 'utf8')
    const again = await edgeCertificates({ dataDir, domain: 'localhost:4000' })
    expect(readFileSync(again.certificates.caCertPath!, 'utf8')).toBe(pem)
    // The bundle for SSL_CERT_FILE: the system's roots, then ours.
    const bundle = readFileSync(again.certificates.caBundlePath!, 'utf8')
    expect(bundle.endsWith(pem)).toBe(true)
    expect(bundle.split('BEGIN CERTIFICATE').length).toBeGreaterThan(10)
    await expect(edgeCertificates({ dataDir, domain: 'sbx.example.test' })).rejects.toThrow(
      /made for another domain/,
    )
  })
})

describe("an operator's certificate", () => {
  async function operatorFiles(dnsNames: string[]) {
    const dir = tmp()
    const { ca } = await createCertificateAuthority({ commonName: 'operator test CA' })
    const leaf = await ca.issue({ commonName: dnsNames[0]!, dnsNames, usages: ['server'] })
    const tlsCert = join(dir, 'cert.pem')
    const tlsKey = join(dir, 'key.pem')
    writeFileSync(tlsCert, leaf.certPem)
    writeFileSync(tlsKey, leaf.keyPem, { mode: 0o600 })
    return { dir, ca: ca.certPem, tlsCert, tlsKey, keyPem: leaf.keyPem }
  }

  it('is served for every sandbox host of its domain, and makes no CA', async () => {
    const op = await operatorFiles(['*.sbx.warren.test'])
    const { certificates, tlsOptions } = await edgeCertificates({
      dataDir: op.dir,
      domain: 'sbx.warren.test:3002',
      tlsCert: op.tlsCert,
      tlsKey: op.tlsKey,
    })
    expect(certificates.caCertPath).toBeUndefined()
    expect(
      await handshake(tlsOptions, { ca: op.ca, servername: `8000-${ID}.sbx.warren.test` }),
    ).toEqual({
      ok: true,
      subjectaltname: 'DNS:*.sbx.warren.test',
    })
    expect(await handshake(tlsOptions, { ca: op.ca, servername: 'example.com' })).toEqual({
      ok: false,
      error: 'ECONNRESET',
    })
  })

  it('is refused at start when it does not cover the domain or the key is not its key', async () => {
    const op = await operatorFiles(['*.other.test'])
    await expect(
      edgeCertificates({
        dataDir: op.dir,
        domain: 'sbx.warren.test',
        tlsCert: op.tlsCert,
        tlsKey: op.tlsKey,
      }),
    ).rejects.toThrow(/does not cover sandbox hosts/)
    const other = await operatorFiles(['*.sbx.warren.test'])
    await expect(
      edgeCertificates({
        dataDir: op.dir,
        domain: 'sbx.warren.test',
        tlsCert: other.tlsCert,
        tlsKey: op.tlsKey,
      }),
    ).rejects.toThrow(/does not match/)
    await expect(
      edgeCertificates({
        dataDir: op.dir,
        domain: 'sbx.warren.test',
        tlsCert: '/nonexistent',
        tlsKey: op.tlsKey,
      }),
    ).rejects.toThrow(/WARREN_TLS_CERT/)
  })
})
