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

export { fileSignature, verifyFileSignature } from '@warren/shared/file-signature'
