import { webcrypto } from 'node:crypto'
import { WarrenError } from '../errors.js'
import {
  generateKeyPair,
  type KeyPair,
  keyPairFromPem,
  privateKeyToPem,
  publicKeyDer,
  SIGNING_ALGORITHM,
} from './keys.js'
import {
  checkDnsName,
  checkIpAddress,
  nameConstraintsExtension,
  type PermittedNames,
} from './names.js'
import { x509 } from './x509.js'

const DAY_MS = 86_400_000
/** Leaves start an hour back: a client whose clock runs a little behind still accepts them. */
const BACKDATE_MS = 3_600_000

export interface CaOptions {
  /** The subject's common name, e.g. `Warren proxy CA (host)`. */
  commonName: string
  /** Default ten years. */
  validityDays?: number
  /** Name constraints; unconstrained when absent. */
  permitted?: PermittedNames
}

/** What a leaf certificate authenticates, as TLS extended key usages. */
export type CertificateUsage = 'server' | 'client'

export interface CertificateSpec {
  commonName: string
  dnsNames?: readonly string[]
  ipAddresses?: readonly string[]
  usages: readonly CertificateUsage[]
  /** Default 90 days; never past the CA's own expiry. */
  validityDays?: number
  /**
   * The subject's public key, when the subject keeps its own private key
   * (or one key serves many certificates); otherwise a key pair is made and
   * its private half returned.
   */
  publicKey?: webcrypto.CryptoKey
}

export interface IssuedCertificate {
  certificate: x509.X509Certificate
  /** The leaf alone, PEM. */
  certPem: string
}

export interface CertificateAuthority {
  readonly certificate: x509.X509Certificate
  readonly certPem: string
  /** Issues a certificate for the given public key. */
  issue(spec: CertificateSpec & { publicKey: webcrypto.CryptoKey }): Promise<IssuedCertificate>
  /** Issues a certificate for a fresh key pair, returned with it. */
  issue(spec: CertificateSpec): Promise<IssuedCertificate & { keyPem: string }>
}

/** A new self-signed CA: its key pair and certificate, the private key as PEM to be saved. */
export async function createCertificateAuthority(
  opts: CaOptions,
): Promise<{ ca: CertificateAuthority; keyPem: string }> {
  const keys = await generateKeyPair()
  const now = Date.now()
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: [{ CN: [opts.commonName] }],
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + (opts.validityDays ?? 3650) * DAY_MS),
      signingAlgorithm: SIGNING_ALGORITHM,
      keys,
      extensions: [
        // pathLen 0: it signs leaves only, never another CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
        ...(opts.permitted ? [nameConstraintsExtension(opts.permitted)] : []),
      ],
    },
    webcrypto,
  )
  return {
    ca: authority(certificate, keys),
    keyPem: await privateKeyToPem(keys.privateKey),
  }
}

/**
 * A CA from its PEM certificate and private key, checked: the certificate is
 * a CA's, valid now, and the key is its key.
 */
export async function certificateAuthorityFromPem(
  certPem: string,
  keyPem: string,
): Promise<CertificateAuthority> {
  let certificate: x509.X509Certificate
  try {
    certificate = new x509.X509Certificate(certPem)
  } catch (err) {
    throw new WarrenError('invalid_argument', 'not a PEM certificate', { cause: err })
  }
  const keys = await keyPairFromPem(keyPem)
  const basic = certificate.getExtension(x509.BasicConstraintsExtension)
  if (!basic?.ca) throw new WarrenError('invalid_argument', 'the certificate is not a CA')
  const now = Date.now()
  if (certificate.notAfter.getTime() <= now || certificate.notBefore.getTime() > now) {
    throw new WarrenError(
      'invalid_argument',
      `the CA certificate is not valid now (${certificate.notBefore.toISOString()} to ${certificate.notAfter.toISOString()})`,
    )
  }
  const certKey = Buffer.from(certificate.publicKey.rawData)
  if (!certKey.equals(await publicKeyDer(keys.publicKey))) {
    throw new WarrenError(
      'invalid_argument',
      'the private key does not belong to the CA certificate',
    )
  }
  return authority(certificate, keys)
}

function authority(certificate: x509.X509Certificate, keys: KeyPair): CertificateAuthority {
  const certPem = certificate.toString('pem')
  async function issue(spec: CertificateSpec): Promise<IssuedCertificate & { keyPem?: string }> {
    const dnsNames = (spec.dnsNames ?? []).map((n) => checkDnsName(n, { wildcard: true }))
    const ipAddresses = (spec.ipAddresses ?? []).map(checkIpAddress)
    if (!spec.usages.length)
      throw new WarrenError('invalid_argument', 'a certificate needs a usage')
    if (spec.usages.includes('server') && !dnsNames.length && !ipAddresses.length) {
      throw new WarrenError('invalid_argument', 'a server certificate needs a DNS name or address')
    }
    if (!spec.commonName || spec.commonName.length > 64) {
      throw new WarrenError('invalid_argument', 'the common name must have 1 to 64 characters')
    }
    const own = spec.publicKey ? undefined : await generateKeyPair()
    const publicKey = spec.publicKey ?? own!.publicKey
    const now = Date.now()
    const notAfter = Math.min(
      now + (spec.validityDays ?? 90) * DAY_MS,
      certificate.notAfter.getTime(),
    )
    const names: x509.JsonGeneralNames = [
      ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
      ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
    ]
    const leaf = await x509.X509CertificateGenerator.create(
      {
        subject: [{ CN: [spec.commonName] }],
        issuer: certificate.subjectName,
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(notAfter),
        signingAlgorithm: SIGNING_ALGORITHM,
        publicKey,
        signingKey: keys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension(
            spec.usages.map((u) =>
              u === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
            ),
          ),
          ...(names.length ? [new x509.SubjectAlternativeNameExtension(names)] : []),
          await x509.SubjectKeyIdentifierExtension.create(publicKey, false, webcrypto),
          await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
        ],
      },
      webcrypto,
    )
    return {
      certificate: leaf,
      certPem: leaf.toString('pem'),
      ...(own ? { keyPem: await privateKeyToPem(own.privateKey) } : {}),
    }
  }
  return { certificate, certPem, issue: issue as CertificateAuthority['issue'] }
}
