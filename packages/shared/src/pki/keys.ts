import { createPrivateKey, createPublicKey, type KeyObject, webcrypto } from 'node:crypto'
import { WarrenError } from '../errors.js'

/** Every Warren key: ECDSA on P-256 (small, fast, accepted by every TLS stack). */
export const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const
/** How Warren's certificates are signed. */
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const

export type KeyPair = webcrypto.CryptoKeyPair

/** A fresh key pair; the private key is extractable once, to be saved. */
export async function generateKeyPair(): Promise<KeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])
}

/** The private key as PKCS #8 PEM (`BEGIN PRIVATE KEY`), what Node's `tls` and OpenSSL read. */
export async function privateKeyToPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key))
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({
    type: 'pkcs8',
    format: 'pem',
  }) as string
}

/** A P-256 private key from PEM (PKCS #8 or SEC 1), with its public half. */
export async function keyPairFromPem(pem: string): Promise<KeyPair> {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch (err) {
    throw new WarrenError('invalid_argument', 'not a PEM private key', { cause: err })
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new WarrenError('invalid_argument', 'the private key is not an ECDSA P-256 key')
  }
  const privateDer = key.export({ type: 'pkcs8', format: 'der' })
  const publicDer = createPublicKey(key).export({ type: 'spki', format: 'der' })
  const [privateKey, publicKey] = await Promise.all([
    webcrypto.subtle.importKey('pkcs8', privateDer, KEY_ALGORITHM, false, ['sign']),
    webcrypto.subtle.importKey('spki', publicDer, KEY_ALGORITHM, true, ['verify']),
  ])
  return { privateKey, publicKey }
}

/** The DER SubjectPublicKeyInfo of a public key, to compare keys. */
export async function publicKeyDer(key: webcrypto.CryptoKey): Promise<Buffer> {
  return Buffer.from(await webcrypto.subtle.exportKey('spki', key))
}
