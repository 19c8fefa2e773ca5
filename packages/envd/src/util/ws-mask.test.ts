import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { mask, unmask } from './ws-mask.js'

/** The definition (RFC 6455 §5.3), byte by byte, as `ws` does it without an addon. */
function byteByByte(data: Uint8Array, m: Uint8Array): Buffer {
  return Buffer.from(data.map((b, i) => b ^ m[i & 3]!))
}

describe('ws-mask', () => {
  // Every alignment of the data in its memory and lengths around the word size.
  const cases = [0, 1, 2, 3].flatMap((at) =>
    [0, 1, 3, 4, 5, 7, 8, 31, 64, 1001, 65_537].map((len) => [at, len] as const),
  )

  it.each(cases)('unmasks like the definition (offset %i, %i bytes)', (at, len) => {
    const m = randomBytes(4)
    const backing = randomBytes(at + len + 3)
    const data = backing.subarray(at, at + len)
    const expected = byteByByte(data, m)
    const before = Buffer.from(backing)
    unmask(data, m)
    expect(Buffer.from(data).equals(expected)).toBe(true)
    // Nothing outside the data is touched.
    expect(backing.subarray(0, at).equals(before.subarray(0, at))).toBe(true)
    expect(backing.subarray(at + len).equals(before.subarray(at + len))).toBe(true)
  })

  it.each(cases)('masks into an output at any offset (source offset %i, %i bytes)', (at, len) => {
    const m = randomBytes(4)
    const source = randomBytes(at + len).subarray(at)
    const original = Buffer.from(source)
    for (const offset of [0, 2, 6, 14]) {
      const output = Buffer.alloc(offset + len + 2, 0xee)
      mask(source, m, output, offset, len)
      expect(output.subarray(offset, offset + len).equals(byteByByte(source, m))).toBe(true)
      expect(output.subarray(0, offset).every((b) => b === 0xee)).toBe(true)
      expect(output.subarray(offset + len).every((b) => b === 0xee)).toBe(true)
      expect(source.equals(original)).toBe(true)
    }
  })

  it('leaves data alone under a zero mask', () => {
    const data = randomBytes(1000)
    const copy = Buffer.from(data)
    unmask(data, Buffer.alloc(4))
    expect(data.equals(copy)).toBe(true)
  })

  it('is its own inverse', () => {
    const m = randomBytes(4)
    const data = randomBytes(100_003)
    const copy = Buffer.from(data)
    unmask(data, m)
    unmask(data, m)
    expect(data.equals(copy)).toBe(true)
  })
})
