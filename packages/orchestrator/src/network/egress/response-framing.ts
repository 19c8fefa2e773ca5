/**
 * Where an HTTP/1.1 response from a fake-or-real server ends, for the egress
 * proxy's own upstream connections: its head parsed, its body told apart from
 * what follows by Content-Length, chunked coding or the connection's end
 * (RFC 9112 §6.3). The bytes are not copied: callers get ranges of the buffer
 * they fed in.
 */

/** A response head that is this long and still not done is refused. */
export const MAX_RESPONSE_HEAD = 64 * 1024

export interface ResponseHead {
  status: number
  /** Name and value pairs as sent, in order (repeats kept). */
  headers: Array<[string, string]>
}

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/

/** A response head (without its final CRLF CRLF); undefined when malformed. */
export function parseResponseHead(text: string): ResponseHead | undefined {
  const lines = text.split('\r\n')
  const status = STATUS_LINE.exec(lines[0] ?? '')
  if (!status) return undefined
  const headers: Array<[string, string]> = []
  for (const line of lines.slice(1)) {
    const m = HEADER_LINE.exec(line)
    // Folded lines and bare CR/LF inside values are refused, not guessed at.
    if (!m || /[\r\n\0]/.test(m[2]!)) return undefined
    headers.push([m[1]!, m[2]!])
  }
  return { status: Number(status[1]), headers }
}

/** How a response's body is delimited. */
export type Framing =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  | { kind: 'close' }

/**
 * The framing of a response to a request of `method`; undefined when the
 * head is ambiguous (two lengths, a length beside chunked, a coding after
 * chunked), which a proxy must not guess at.
 */
export function framingOf(method: string, head: ResponseHead): Framing | undefined {
  if (method === 'HEAD' || head.status === 204 || head.status === 304 || head.status < 200) {
    return { kind: 'none' }
  }
  const values = (name: string) =>
    head.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v)
  const codings = values('transfer-encoding')
    .flatMap((v) => v.split(','))
    .map((c) => c.trim().toLowerCase())
    .filter(Boolean)
  const lengths = values('content-length')
  if (codings.length) {
    if (lengths.length) return undefined
    // Chunked last means chunked framing; anything else ends with the connection.
    if (codings.at(-1) !== 'chunked') return { kind: 'close' }
    if (codings.indexOf('chunked') !== codings.length - 1) return undefined
    return { kind: 'chunked' }
  }
  if (!lengths.length) return { kind: 'close' }
  const distinct = new Set(lengths.flatMap((v) => v.split(',')).map((v) => v.trim()))
  if (distinct.size !== 1) return undefined
  const [only] = distinct
  if (!/^\d{1,15}$/.test(only!)) return undefined
  return { kind: 'length', length: Number(only) }
}

/**
 * A chunked body's decoder (RFC 9112 §7.1): fed the bytes that follow the
 * head, it hands out the ranges that are data and says when the body (with
 * its trailers, which are dropped) is over.
 */
export class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' | 'done' = 'size'
  private line = ''
  private left = 0

  get done(): boolean {
    return this.state === 'done'
  }

  /**
   * Decodes `buf[start, end)`; `data` gets each data range. Returns where
   * decoding stopped (end, or the first byte after the body), or -1 when the
   * bytes are not chunked coding.
   */
  feed(
    buf: Uint8Array,
    start: number,
    end: number,
    data: (from: number, to: number) => void,
  ): number {
    let i = start
    while (i < end && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.left, end - i)
        data(i, i + n)
        i += n
        this.left -= n
        if (this.left === 0) this.state = 'data-crlf'
        continue
      }
      // A line: the size line, the CRLF after data, or a trailer line.
      const lf = buf.indexOf(0x0a, i)
      const stop = lf === -1 || lf >= end ? end : lf
      this.line += Buffer.from(buf.buffer, buf.byteOffset + i, stop - i).toString('latin1')
      if (this.line.length > 4096) return -1
      i = stop
      if (stop === end) break
      i++ // the LF
      if (!this.line.endsWith('\r')) return -1
      const line = this.line.slice(0, -1)
      this.line = ''
      if (this.state === 'data-crlf') {
        if (line !== '') return -1
        this.state = 'size'
      } else if (this.state === 'size') {
        const m = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?$/.exec(line)
        if (!m) return -1
        this.left = Number.parseInt(m[1]!, 16)
        this.state = this.left === 0 ? 'trailer' : 'data'
      } else if (line === '') {
        this.state = 'done'
      }
    }
    return i
  }
}
