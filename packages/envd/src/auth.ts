import { createHash } from 'node:crypto'
import { tokenMatches } from '@warren/shared/proxy/tokens'

export const ACCESS_TOKEN_HEADER = 'x-access-token'

/** True when no token is set, or the header carries the current one. */
export function hasValidToken(expected: string | undefined, header: unknown): boolean {
  if (expected === undefined) return true
  return typeof header === 'string' && tokenMatches(header, expected)
}

/**
 * The user a Connect request acts as: `Authorization: Basic base64("<user>:")`
 * as the SDK sends it, else undefined (the caller applies the default user).
 */
export function basicAuthUser(header: string | null | undefined): string | undefined {
  if (!header) return undefined
  const m = /^Basic\s+(\S+)$/i.exec(header.trim())
  if (!m) return undefined
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  const name = colon === -1 ? decoded : decoded.slice(0, colon)
  return name === '' ? undefined : name
}

/**
 * The signature of a `/files` URL exactly as the SDK computes it
 * (src/sandbox/signature.ts): `v1_` + unpadded base64 of
 * sha256("path:operation:user:token[:expiration]"), user '' for the default.
 */
export function fileSignature(opts: {
  path: string
  operation: 'read' | 'write'
  user: string
  token: string
  expiration?: number
}): string {
  const parts = [opts.path, opts.operation, opts.user, opts.token]
  if (opts.expiration !== undefined) parts.push(String(opts.expiration))
  const hash = createHash('sha256').update(parts.join(':')).digest('base64')
  return `v1_${hash.replace(/=+$/, '')}`
}

export type SignatureCheck = { ok: true } | { ok: false; message: string }

/** Verifies a signed `/files` URL; `nowSeconds` is injectable for tests. */
export function verifyFileSignature(opts: {
  token: string
  path: string
  operation: 'read' | 'write'
  user: string | undefined
  signature: string | undefined
  expiration: string | undefined
  nowSeconds?: number
}): SignatureCheck {
  if (!opts.signature) return { ok: false, message: 'missing signature query parameter' }
  let expiration: number | undefined
  if (opts.expiration !== undefined) {
    if (!/^\d+$/.test(opts.expiration)) {
      return { ok: false, message: 'invalid signature_expiration' }
    }
    expiration = Number(opts.expiration)
  }
  const expected = fileSignature({
    path: opts.path,
    operation: opts.operation,
    user: opts.user ?? '',
    token: opts.token,
    expiration,
  })
  if (!tokenMatches(opts.signature, expected)) return { ok: false, message: 'invalid signature' }
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000)
  if (expiration !== undefined && expiration < now) {
    return { ok: false, message: 'signature is already expired' }
  }
  return { ok: true }
}
