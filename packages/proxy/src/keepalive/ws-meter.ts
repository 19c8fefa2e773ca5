/**
 * Measures one direction of a WebSocket connection for keepalive: data frames
 * (text, binary, continuation) count, control frames (ping, pong, close) do
 * not — a heartbeat proves the peers are there, not that anyone uses the
 * sandbox (envd pings every tunnel, and most clients answer on their own).
 * Fed the raw bytes of its direction in order; the sandbox's direction starts
 * with the HTTP response to the upgrade, which is skipped.
 */
export class WebSocketMeter {
  private inHead: boolean
  private headTail = ''
  private header: number[] = []
  /** Bytes of the current frame's payload still to come. */
  private remaining = 0
  private data = false

  constructor(opts: { httpHead: boolean }) {
    this.inHead = opts.httpHead
  }

  /** The bytes of data frames (headers included) in this chunk. */
  push(chunk: Buffer): number {
    let i = 0
    if (this.inHead) {
      const text = this.headTail + chunk.toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) {
        this.headTail = text.slice(-3)
        return 0
      }
      i = end + 4 - this.headTail.length
      this.inHead = false
      this.headTail = ''
    }
    let counted = 0
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i)
        if (this.data) counted += n
        this.remaining -= n
        i += n
        continue
      }
      this.header.push(chunk[i++]!)
      const size = headerSize(this.header)
      if (size === undefined || this.header.length < size) continue
      const h = Buffer.from(this.header)
      this.header = []
      // Opcodes 0x0-0x7 are data frames, 0x8-0xF control frames.
      this.data = (h[0]! & 0x0f) < 0x8
      this.remaining = payloadLength(h)
      if (this.data) counted += h.length
    }
    return counted
  }
}

/** The size of a frame header once its first two bytes are known (RFC 6455 §5.2). */
function headerSize(h: number[]): number | undefined {
  if (h.length < 2) return undefined
  const len7 = h[1]! & 0x7f
  const extended = len7 === 126 ? 2 : len7 === 127 ? 8 : 0
  const mask = h[1]! & 0x80 ? 4 : 0
  return 2 + extended + mask
}

function payloadLength(h: Buffer): number {
  const len7 = h[1]! & 0x7f
  if (len7 === 126) return h.readUInt16BE(2)
  if (len7 === 127) return Number(h.readBigUInt64BE(2))
  return len7
}
