import { xorInPlace } from '../util/ws-mask.js'

/** What a tunnel does with what its client sends. */
export interface ClientFrameSink {
  /** Payload bytes of a data frame, unmasked in place: a view of the chunk given to `push`. */
  data(bytes: Buffer): void
  ping(payload: Buffer): void
  pong(payload: Buffer): void
  /** The client's close frame (its status code, if it sent one); nothing is read after it. */
  close(code: number | undefined): void
  /** The client broke RFC 6455; nothing is read after it. */
  violation(message: string): void
}

const OP_CONTINUATION = 0x0
const OP_TEXT = 0x1
const OP_BINARY = 0x2
const OP_CLOSE = 0x8
const OP_PING = 0x9
const OP_PONG = 0xa

/** Close codes a peer may send (RFC 6455 §7.4, as `ws` accepts them). */
function validCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  )
}

/**
 * The frames a tunnel's client sends, read as a byte stream: a tunnel does
 * not care where one message ends, so a data frame's payload is unmasked
 * where it lies, in the chunk that was read, and handed on piece by piece
 * as it arrives — no message is gathered, nothing copied or allocated (what
 * `ws`'s receiver costs an upload: a read at most 64 KiB, every message
 * joined into a fresh buffer). Text frames are carried as bytes, like
 * binary ones. Control frames (at most 125 bytes) are gathered and passed
 * on whole. Whatever RFC 6455 forbids a client — an unmasked frame,
 * reserved bits (no extension is agreed), an unknown opcode, a fragmented
 * or oversized control frame, a continuation with no message begun, a bad
 * close code — is a violation, and the reader stops.
 */
export class ClientFrames {
  private readonly header = Buffer.alloc(14)
  private headerLength = 0
  private inPayload = false
  private remaining = 0
  private readonly mask = Buffer.alloc(4)
  /** Payload bytes of this frame so far, mod 4: the mask byte the next one takes. */
  private phase = 0
  private opcode = 0
  private fin = false
  private control: Buffer[] = []
  /** A data message's frames have begun and its last has not come. */
  private fragmented = false
  private stopped = false

  constructor(private readonly sink: ClientFrameSink) {}

  /** Reads `chunk`, the next bytes from the client; its data payloads are unmasked in place. */
  push(chunk: Buffer): void {
    let i = 0
    while (i < chunk.length && !this.stopped) {
      if (!this.inPayload) {
        i = this.readHeader(chunk, i)
        continue
      }
      const n = Math.min(this.remaining, chunk.length - i)
      const piece = chunk.subarray(i, i + n)
      xorInPlace(piece, this.mask, this.phase)
      this.phase = (this.phase + n) & 3
      this.remaining -= n
      i += n
      if (this.opcode >= OP_CLOSE) this.control.push(Buffer.from(piece))
      else this.sink.data(piece)
      if (this.remaining === 0) this.endFrame()
    }
  }

  /** Takes header bytes from `chunk` at `i`; returns where the header (or the chunk) ends. */
  private readHeader(chunk: Buffer, i: number): number {
    while (i < chunk.length) {
      this.header[this.headerLength++] = chunk[i++]!
      const size = this.headerSize()
      if (size !== undefined && this.headerLength === size) {
        this.beginFrame()
        return i
      }
    }
    return i
  }

  /** The header's size once its first two bytes are known. */
  private headerSize(): number | undefined {
    if (this.headerLength < 2) return undefined
    const len7 = this.header[1]! & 0x7f
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + 4
  }

  private beginFrame(): void {
    const h = this.header
    this.headerLength = 0
    this.fin = (h[0]! & 0x80) !== 0
    this.opcode = h[0]! & 0x0f
    const len7 = h[1]! & 0x7f
    const at = len7 === 126 ? 4 : len7 === 127 ? 10 : 2
    const length =
      len7 === 126 ? h.readUInt16BE(2) : len7 === 127 ? Number(h.readBigUInt64BE(2)) : len7
    const problem = this.problem(length)
    if (problem) {
      this.violate(problem)
      return
    }
    h.copy(this.mask, 0, at, at + 4)
    if (this.opcode === OP_CONTINUATION && this.fin) this.fragmented = false
    if (this.opcode === OP_TEXT || this.opcode === OP_BINARY) this.fragmented = !this.fin
    this.remaining = length
    this.phase = 0
    this.inPayload = true
    if (length === 0) this.endFrame()
  }

  /** What is wrong with the frame whose header was just read, if anything. */
  private problem(length: number): string | undefined {
    const h = this.header
    if (h[0]! & 0x70) return 'reserved bits set: no extension was agreed'
    if (!(h[1]! & 0x80)) return "a client's frames must be masked"
    if (!Number.isSafeInteger(length)) return 'frame too long'
    switch (this.opcode) {
      case OP_CONTINUATION:
        return this.fragmented ? undefined : 'a continuation with no message begun'
      case OP_TEXT:
      case OP_BINARY:
        return this.fragmented ? 'a new message before the last one ended' : undefined
      case OP_CLOSE:
      case OP_PING:
      case OP_PONG:
        return this.fin && length <= 125 ? undefined : 'control frames are whole and short'
      default:
        return `unknown opcode ${this.opcode}`
    }
  }

  private endFrame(): void {
    this.inPayload = false
    if (this.opcode < OP_CLOSE) return
    const payload = this.control.length === 1 ? this.control[0]! : Buffer.concat(this.control)
    this.control = []
    if (this.opcode === OP_PING) this.sink.ping(payload)
    else if (this.opcode === OP_PONG) this.sink.pong(payload)
    else this.closeFrame(payload)
  }

  private closeFrame(payload: Buffer): void {
    const code = payload.length >= 2 ? payload.readUInt16BE(0) : undefined
    if (payload.length === 1) this.violate('a close frame with half a status code')
    else if (code !== undefined && !validCloseCode(code)) this.violate(`invalid close code ${code}`)
    else {
      this.stopped = true
      this.sink.close(code)
    }
  }

  private violate(message: string): void {
    this.stopped = true
    this.sink.violation(message)
  }
}
