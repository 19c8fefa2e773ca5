import { createHash } from 'node:crypto'
import { tokenMatches } from './proxy/tokens.js'

/**
 * Signed `/files` URLs (the SDK's uploadUrl/downloadUrl): one definition for
 * envd, which verifies them, and the edge proxy, which finds the sandbox a
 * header-less signed URL belongs to.
 */

export type FileOperation = 'read' | 'write'

/**
 * The signature exactly as the SDK computes it (src/sandbox/signature.ts):
 * `v1_` + unpadded base64 of sha256("path:operation:user:token[:expiration]"),
 * user '' for the default.
 */
export function fileSignature(opts: {
  path: string
  operation: FileOperation
  user: string
  token: string
  expiration?: number | undefined
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
  operation: FileOperation
  user: string | undefined
  signature: string | undefined
  expiration: string | undefined
  nowSeconds?: number
}): SignatureCheck {
  if (!opts.signature) return { ok: false, message: 'missing signature query parameter' }
  let expiration: number | undefined
  if (opts.expiration !== undefined) {
    if (!/^\d{1,15}$/.test(opts.expiration)) {
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

/** What a signed `/files` request commits to, as its URL carries it. */
export interface SignedFilesRequest {
  path: string
  operation: FileOperation
  user: string
  signature: string
  /** Raw `signature_expiration`, if any (validated by `verifyFileSignature`). */
  expiration: string | undefined
}

/** The signed `/files` request a method and URL make, if they make one (GET reads, POST writes). */
export function signedFilesRequest(
  method: string | undefined,
  rawUrl: string | undefined,
): SignedFilesRequest | undefined {
  const operation = method === 'GET' ? 'read' : method === 'POST' ? 'write' : undefined
  if (!operation || !rawUrl) return undefined
  let url: URL
  try {
    url = new URL(rawUrl, 'http://x')
  } catch {
    return undefined
  }
  const signature = url.searchParams.get('signature')
  if (url.pathname !== '/files' || !signature) return undefined
  return {
    path: url.searchParams.get('path') ?? '',
    operation,
    user: url.searchParams.get('username') ?? '',
    signature,
    expiration: url.searchParams.get('signature_expiration') ?? undefined,
  }
}
