import { describe, expect, it } from 'vitest'
import { uploadMetadata } from './upload-metadata.js'

describe('uploadMetadata', () => {
  it.each([
    [{ 'x-access-token': 'a' }, {}],
    [{ 'x-metadata-author': 'me', 'content-type': 'x' }, { author: 'me' }],
    [{ 'x-metadata-': 'ignored' }, {}],
  ])('%j', (headers, metadata) => {
    expect(uploadMetadata(headers)).toEqual({ ok: true, metadata })
  })

  it('rejects non-ASCII values', () => {
    expect(uploadMetadata({ 'x-metadata-a': 'é' }).ok).toBe(false)
  })
})
