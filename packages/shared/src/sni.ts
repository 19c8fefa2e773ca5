/**
 * The server name of a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), read
 * from the first bytes of a connection. 'incomplete' asks for more bytes;
 * null means a ClientHello without SNI (or not TLS at all).
 */
export function readSni(buf: Buffer): string | null | 'incomplete' {
  if (buf.length < 5) return 'incomplete'
  if (buf[0] !== 0x16) return null // not a handshake record
  const recordLen = buf.readUInt16BE(3)
  if (buf.length < 5 + recordLen) return recordLen > 16_384 ? null : 'incomplete'
  const hs = buf.subarray(5, 5 + recordLen)
  if (hs[0] !== 0x01 || hs.length < 4) return null // not a ClientHello
  let p = 4 + 2 + 32 // handshake header, version, random
  if (p >= hs.length) return null
  p += 1 + hs[p]! // session id
  if (p + 2 > hs.length) return null
  p += 2 + hs.readUInt16BE(p) // cipher suites
  if (p >= hs.length) return null
  p += 1 + hs[p]! // compression methods
  if (p + 2 > hs.length) return null
  const extEnd = p + 2 + hs.readUInt16BE(p)
  p += 2
  while (p + 4 <= extEnd && p + 4 <= hs.length) {
    const type = hs.readUInt16BE(p)
    const len = hs.readUInt16BE(p + 2)
    p += 4
    if (type === 0x0000) {
      // server_name: list length, then entries of (type, length, name).
      let q = p + 2
      const end = p + len
      while (q + 3 <= end) {
        const nameType = hs[q]!
        const nameLen = hs.readUInt16BE(q + 1)
        q += 3
        if (nameType === 0 && q + nameLen <= end)
          return hs.subarray(q, q + nameLen).toString('ascii')
        q += nameLen
      }
      return null
    }
    p += len
  }
  return null
}
