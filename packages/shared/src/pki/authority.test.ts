import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { connect, createServer, type TLSSocket, type TlsOptions } from 'node:tls'
import { describe, expect, it } from 'vitest'
import {
  type CertificateAuthority,
  certificateAuthorityFromPem,
  createCertificateAuthority,
} from './authority.js'
import { keyPairFromPem } from './keys.js'
import { permitsDnsName } from './names.js'

/** A TLS server on loopback for one handshake; resolves with the client's outcome. */
async function handshake(
  server: TlsOptions,
  client: { ca?: string; servername?: string; cert?: string; key?: string },
): Promise<{ ok: true; peer?: string } | { ok: false; error: string }> {
  const srv = createServer(server, (s) => {
    s.end('hi')
  })
  srv.on('tlsClientError', () => {})
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  try {
    return await new Promise((resolve) => {
      const socket: TLSSocket = connect({
        host: '127.0.0.1',
        port: (srv.address() as AddressInfo).port,
        ...client,
      })
      // Done when the server's first bytes arrive: under TLS 1.3 a server
      // refuses a client certificate only after the client's handshake ends.
      socket.once('data', () => {
        resolve({ ok: true })
        socket.destroy()
      })
      socket.once('error', (err: NodeJS.ErrnoException) =>
        resolve({ ok: false, error: err.code ?? err.message }),
      )
      socket.once('close', () => resolve({ ok: false, error: 'closed' }))
    })
  } finally {
    srv.close()
  }
}

async function newCa(name = 'test CA', permitted?: { dns?: string[]; ipRanges?: string[] }) {
  return createCertificateAuthority({ commonName: name, ...(permitted ? { permitted } : {}) })
}

describe('certificate authority', () => {
  it('makes a P-256 CA certificate that says it is a CA', async () => {
    const { ca, keyPem } = await newCa()
    const cert = new X509Certificate(ca.certPem)
    expect(cert.ca).toBe(true)
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    expect(cert.checkIssued(cert)).toBe(true)
    const years = (Date.parse(cert.validTo) - Date.now()) / (365 * 86_400_000)
    expect(years).toBeGreaterThan(9.9)
    expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/)
  })

  it('issues server certificates that Node tls accepts with the CA, and refuses without it', async () => {
    const { ca } = await newCa()
    const leaf = await ca.issue({
      commonName: 'api.warren.test',
      dnsNames: ['api.warren.test'],
      ipAddresses: ['127.0.0.1'],
      usages: ['server'],
    })
    const x = new X509Certificate(leaf.certPem)
    expect(x.ca).toBe(false)
    expect(x.subjectAltName).toBe('DNS:api.warren.test, IP Address:127.0.0.1')
    expect(x.checkIssued(new X509Certificate(ca.certPem))).toBe(true)
    const server = { cert: leaf.certPem, key: leaf.keyPem }
    expect(await handshake(server, { ca: ca.certPem, servername: 'api.warren.test' })).toEqual({
      ok: true,
    })
    // No trust in our CA: the system roots do not know it.
    expect(await handshake(server, { servername: 'api.warren.test' })).toEqual({
      ok: false,
      error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    })
    // The right CA, the wrong name.
    expect(await handshake(server, { ca: ca.certPem, servername: 'other.warren.test' })).toEqual({
      ok: false,
      error: 'ERR_TLS_CERT_ALTNAME_INVALID',
    })
  })

  it('a chain from another CA is refused', async () => {
    const { ca } = await newCa('ours')
    const { ca: theirs } = await newCa('theirs')
    const leaf = await theirs.issue({
      commonName: 'x.warren.test',
      dnsNames: ['x.warren.test'],
      usages: ['server'],
    })
    expect(
      await handshake(
        { cert: leaf.certPem, key: leaf.keyPem },
        { ca: ca.certPem, servername: 'x.warren.test' },
      ),
    ).toEqual({ ok: false, error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })
  })

  it('client certificates authenticate clients to a server requiring them (mutual TLS)', async () => {
    const { ca } = await newCa()
    const { ca: other } = await newCa('other')
    const server = await ca.issue({
      commonName: 'api',
      dnsNames: ['api.warren.test'],
      usages: ['server'],
    })
    const client = await ca.issue({ commonName: 'node-1', usages: ['client'] })
    const stranger = await other.issue({ commonName: 'node-1', usages: ['client'] })
    const serverOpts = {
      cert: server.certPem,
      key: server.keyPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    }
    const as = (c: { certPem: string; keyPem: string }) => ({
      ca: ca.certPem,
      servername: 'api.warren.test',
      cert: c.certPem,
      key: c.keyPem,
    })
    expect(await handshake(serverOpts, as(client))).toEqual({ ok: true })
    expect(await handshake(serverOpts, as(stranger))).toMatchObject({ ok: false })
    expect(
      await handshake(serverOpts, { ca: ca.certPem, servername: 'api.warren.test' }),
    ).toMatchObject({
      ok: false,
    })
    // A server certificate is not a client certificate (extended key usage).
    expect((await handshake(serverOpts, as(server))).ok).toBe(false)
  })

  it('a name-constrained CA can vouch only for its names, and OpenSSL enforces it', async () => {
    const { ca } = await newCa('constrained', {
      dns: ['localhost'],
      ipRanges: ['127.0.0.0/8', '::1/128'],
    })
    expect(permitsDnsName(ca.certificate, '8000-abc.localhost')).toBe(true)
    expect(permitsDnsName(ca.certificate, 'localhost')).toBe(true)
    expect(permitsDnsName(ca.certificate, 'example.com')).toBe(false)
    expect(permitsDnsName(ca.certificate, 'notlocalhost')).toBe(false)
    const inside = await ca.issue({
      commonName: '8000-abc.localhost',
      dnsNames: ['8000-abc.localhost'],
      usages: ['server'],
    })
    expect(
      await handshake(
        { cert: inside.certPem, key: inside.keyPem },
        { ca: ca.certPem, servername: '8000-abc.localhost' },
      ),
    ).toEqual({ ok: true })
    // Signing does not check constraints; every verifier does.
    const outside = await ca.issue({
      commonName: 'example.com',
      dnsNames: ['example.com'],
      usages: ['server'],
    })
    expect(
      await handshake(
        { cert: outside.certPem, key: outside.keyPem },
        { ca: ca.certPem, servername: 'example.com' },
      ),
    ).toMatchObject({ ok: false })
    // (OpenSSL's "permitted subtree violation"; Node names it UNSPECIFIED.)
  })

  it('one key pair may serve many certificates', async () => {
    const { ca } = await newCa()
    const { keyPem } = await ca.issue({
      commonName: 'a',
      dnsNames: ['a.warren.test'],
      usages: ['server'],
    })
    const keys = await keyPairFromPem(keyPem)
    const b = await ca.issue({
      commonName: 'b',
      dnsNames: ['b.warren.test'],
      usages: ['server'],
      publicKey: keys.publicKey,
    })
    expect('keyPem' in b).toBe(false)
    expect(
      await handshake(
        { cert: b.certPem, key: keyPem },
        { ca: ca.certPem, servername: 'b.warren.test' },
      ),
    ).toEqual({
      ok: true,
    })
  })

  it('refuses bad specifications', async () => {
    const { ca } = await newCa()
    const bad: Parameters<CertificateAuthority['issue']>[0][] = [
      { commonName: 'x', usages: ['server'] },
      { commonName: 'x', dnsNames: ['bad name'], usages: ['server'] },
      { commonName: 'x', dnsNames: ['-a.test'], usages: ['server'] },
      { commonName: 'x', ipAddresses: ['300.1.1.1'], usages: ['server'] },
      { commonName: 'x', dnsNames: ['a.test'], usages: [] },
      { commonName: '', dnsNames: ['a.test'], usages: ['server'] },
    ]
    for (const spec of bad)
      await expect(ca.issue(spec)).rejects.toMatchObject({ code: 'invalid_argument' })
  })
})

describe('loading a CA', () => {
  it('round-trips through PEM and still signs what clients trust', async () => {
    const { ca, keyPem } = await newCa()
    const loaded = await certificateAuthorityFromPem(ca.certPem, keyPem)
    const leaf = await loaded.issue({
      commonName: 'r',
      dnsNames: ['r.warren.test'],
      usages: ['server'],
    })
    expect(
      await handshake(
        { cert: leaf.certPem, key: leaf.keyPem },
        { ca: ca.certPem, servername: 'r.warren.test' },
      ),
    ).toEqual({ ok: true })
  })

  it('refuses a key that is not the CA key, a leaf as a CA, and garbage', async () => {
    const { ca, keyPem } = await newCa()
    const { keyPem: otherKey } = await newCa('other')
    await expect(certificateAuthorityFromPem(ca.certPem, otherKey)).rejects.toThrow(
      /does not belong/,
    )
    const leaf = await ca.issue({
      commonName: 'l',
      dnsNames: ['l.warren.test'],
      usages: ['server'],
    })
    await expect(certificateAuthorityFromPem(leaf.certPem, leaf.keyPem)).rejects.toThrow(/not a CA/)
    await expect(certificateAuthorityFromPem('nope', keyPem)).rejects.toThrow(
      /not a PEM certificate/,
    )
    await expect(certificateAuthorityFromPem(ca.certPem, 'nope')).rejects.toThrow(
      /not a PEM private key/,
    )
  })
})
