import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { checkServerIdentity, createSecureContext } from 'node:tls'
import { WarrenError } from '@warren/shared'
import type { EdgeCertificates } from './certificates.js'

/**
 * An operator's certificate for `*.{domain}` (WARREN_TLS_CERT, chain
 * included, and WARREN_TLS_KEY), checked at start as a client would check
 * it, so that a wrong file fails here and not in every client.
 */
export function operatorCertificates(
  certPath: string,
  keyPath: string,
  domain: string,
): EdgeCertificates {
  let cert: string
  let key: string
  let leaf: X509Certificate
  try {
    cert = readFileSync(certPath, 'utf8')
    key = readFileSync(keyPath, 'utf8')
    leaf = new X509Certificate(cert)
    if (!leaf.checkPrivateKey(createPrivateKey(key)))
      throw new Error('the key does not match the certificate')
  } catch (err) {
    throw new WarrenError(
      'invalid_argument',
      `WARREN_TLS_CERT/WARREN_TLS_KEY: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
  const sample = `8000-${'a'.repeat(20)}.${domain}`
  const mismatch = checkServerIdentity(sample, leaf.toLegacyObject())
  if (mismatch) {
    throw new WarrenError(
      'invalid_argument',
      `WARREN_TLS_CERT does not cover sandbox hosts like ${sample}: ${mismatch.message}`,
    )
  }
  const context = createSecureContext({ cert, key })
  return { fallback: async () => ({ cert, key }), contextFor: async () => context }
}
