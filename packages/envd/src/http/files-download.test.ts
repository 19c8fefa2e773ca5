import { describe, expect, it } from 'vitest'
import { wantsGzip } from './files-download.js'

describe('wantsGzip', () => {
  it.each([
    [undefined, false],
    ['gzip', true],
    ['deflate, gzip;q=0.5', true],
    ['gzip;q=0', false],
    ['identity', false],
    ['GZIP', true],
  ])('%s → %s', (h, expected) => {
    expect(wantsGzip(h)).toBe(expected)
  })
})
