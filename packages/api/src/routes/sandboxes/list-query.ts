import { WarrenError } from '@warren/shared'

/**
 * The SDK sends metadata filters as one query value: `k=v&k2=v2` with each key
 * and value URI-encoded, then form-encoded again by URLSearchParams.
 */
export function parseMetadataFilter(value: string | undefined): Record<string, string> | undefined {
  if (value === undefined || value === '') return undefined
  const out: Record<string, string> = {}
  try {
    for (const [k, v] of new URLSearchParams(value))
      out[decodeURIComponent(k)] = decodeURIComponent(v)
  } catch {
    throw new WarrenError(
      'invalid_argument',
      'metadata: malformed filter (expected key=value&key2=value2)',
    )
  }
  return out
}

/** Cursors are opaque to clients: the last item's start time and id. */
export function encodeCursor(c: { startedAt: number; id: string }): string {
  return Buffer.from(JSON.stringify([c.startedAt, c.id])).toString('base64url')
}

export function decodeCursor(
  token: string | undefined,
): { startedAt: number; id: string } | undefined {
  if (!token) return undefined
  try {
    const [startedAt, id] = JSON.parse(Buffer.from(token, 'base64url').toString()) as unknown[]
    if (typeof startedAt === 'number' && typeof id === 'string') return { startedAt, id }
  } catch {
    // fall through
  }
  throw new WarrenError('invalid_argument', 'nextToken: invalid paging token')
}
