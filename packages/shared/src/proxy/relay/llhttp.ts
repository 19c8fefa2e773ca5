import { createRequire } from 'node:module'

/**
 * Node's own HTTP/1 parser (llhttp, in C++), as its HTTP server and client
 * use it: the same strictness (no lenient flags: conflicting or repeated
 * Content-Length, Transfer-Encoding with Content-Length, bare LF and the
 * like are errors), at a fraction of the cost of a JavaScript parser.
 * `_http_common` is where Node's http modules take it from; the relay
 * checks it is there (see `llhttpAvailable`) and otherwise is not used.
 */
export interface HttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void
  /** Bytes parsed, or an Error with `code` and `bytesParsed`. */
  execute(data: Buffer): number | (Error & { code?: string; bytesParsed?: number })
  finish(): undefined | Error
  close(): void
  [key: number]: unknown
}

interface ParserClass {
  new (): HttpParser
  REQUEST: number
  RESPONSE: number
  kOnMessageBegin: number
  kOnHeaders: number
  kOnHeadersComplete: number
  kOnBody: number
  kOnMessageComplete: number
  kOnExecute: number
}

let common: { HTTPParser: ParserClass; methods: string[] } | undefined
try {
  common = createRequire(import.meta.url)('_http_common')
  if (typeof common?.HTTPParser !== 'function' || !Array.isArray(common.methods)) common = undefined
} catch {
  common = undefined
}

export const llhttpAvailable = common !== undefined

export const { HTTPParser, methods } = common ?? {
  HTTPParser: undefined as unknown as ParserClass,
  methods: [] as string[],
}

/**
 * What `kOnHeadersComplete` may return: `STOP_AFTER_HEAD` makes `execute`
 * return right after the head (the byte count up to its end), as for an
 * upgrade; `NO_BODY` tells a response parser the message has no body (the
 * answer to a HEAD).
 */
export const NO_BODY = 1
export const STOP_AFTER_HEAD = 2

/** A parser of `type` whose callbacks are set by the caller; Node's default header size limit. */
export function newParser(type: number): HttpParser {
  const parser = new HTTPParser()
  parser.initialize(type, {}, 0, 0)
  return parser
}
