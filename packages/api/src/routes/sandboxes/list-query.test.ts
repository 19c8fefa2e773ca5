import { describe, expect, it } from 'vitest'
import { decodeCursor, encodeCursor, parseMetadataFilter } from './list-query.js'

/** What the e2b SDK's SandboxPaginator sends for a metadata filter. */
function sdkEncode(metadata: Record<string, string>): string {
  const pairs = Object.fromEntries(
    Object.entries(metadata).map(([k, v]) => [encodeURIComponent(k), encodeURIComponent(v)]),
  )
  return new URLSearchParams(pairs).toString()
}

describe('list query parsing', () => {
  it.each<{ name: string; metadata: Record<string, string> }>([
    { name: 'plain', metadata: { user: 'alice' } },
    { name: 'several', metadata: { a: '1', b: '2' } },
    { name: 'reserved characters', metadata: { 'k&=y': 'v a/l%ue?' } },
    { name: 'unicode', metadata: { ключ: 'значение ✓' } },
  ])('decodes the SDK metadata encoding: $name', ({ metadata }) => {
    expect(parseMetadataFilter(sdkEncode(metadata))).toEqual(metadata)
  })

  it('treats an absent filter as none and rejects malformed encodings', () => {
    expect(parseMetadataFilter(undefined)).toBeUndefined()
    expect(parseMetadataFilter('')).toBeUndefined()
    expect(() => parseMetadataFilter('a=%E0%A4%A')).toThrow(/metadata/)
  })

  it('round-trips cursors and rejects forged ones', () => {
    const c = { startedAt: 1700000000123, id: 'abc' }
    expect(decodeCursor(encodeCursor(c))).toEqual(c)
    expect(decodeCursor(undefined)).toBeUndefined()
    expect(() => decodeCursor('not-a-token')).toThrow(/nextToken/)
    expect(() => decodeCursor(Buffer.from('[1]').toString('base64url'))).toThrow(/nextToken/)
  })
})
