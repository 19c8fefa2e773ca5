/**
 * WebSocket masking for `ws`, 32 bits at a time. `ws` XORs every byte of a
 * client's frames one by one in JavaScript (~250 MiB/s: the upload side of a
 * tunnel spent most of envd's time there) unless a `bufferutil` module is
 * found; envd's bundle resolves `bufferutil` to this module
 * (scripts/bundle.js), which does the same XOR a word at a time (several
 * times faster) and needs no native addon.
 */

/** `buffer[i] ^= mask[i & 3]` for every byte, in place (nothing to do for a zero mask). */
export function unmask(buffer: Uint8Array, mask: Uint8Array): void {
  if ((mask[0]! | mask[1]! | mask[2]! | mask[3]!) === 0) return
  xorInPlace(buffer, mask, 0)
}

/** `output[offset + i] = source[i] ^ mask[i & 3]` for `length` bytes. */
export function mask(
  source: Uint8Array,
  maskBytes: Uint8Array,
  output: Uint8Array,
  offset: number,
  length: number,
): void {
  output.set(source.subarray(0, length), offset)
  xorInPlace(output.subarray(offset, offset + length), maskBytes, 0)
}

/** XORs `buf` with the 4-byte `mask`, its byte 0 taking mask byte `phase`. */
export function xorInPlace(buf: Uint8Array, mask: Uint8Array, phase: number): void {
  const len = buf.length
  // Bytes up to the first 4-byte boundary of the memory, then whole words, then the tail.
  const lead = Math.min(len, (4 - (buf.byteOffset & 3)) & 3)
  let i = 0
  for (; i < lead; i++) buf[i]! ^= mask[(i + phase) & 3]!
  const words = (len - i) >>> 2
  if (words > 0) {
    // The mask as a word in memory order, starting at byte i's place in it.
    const word = new Uint8Array(4)
    for (let k = 0; k < 4; k++) word[k] = mask[(i + k + phase) & 3]!
    const m = new Uint32Array(word.buffer)[0]!
    const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words)
    for (let k = 0; k < words; k++) view[k]! ^= m
    i += words * 4
  }
  for (; i < len; i++) buf[i]! ^= mask[(i + phase) & 3]!
}
