import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import https from 'node:https'
import { WarrenError } from '@warren/shared'
import { isLoopbackHost } from './reference.js'

export interface HttpResponse {
  status: number
  headers: IncomingHttpHeaders
  /** The body, unread; the caller consumes it or calls `discard()`. */
  body: IncomingMessage
  /** Where the response came from, after redirects. */
  url: URL
  discard(): void
}

export interface HttpOptions {
  method?: 'GET' | 'HEAD'
  headers?: Record<string, string>
  /** Sent only to the origin of the first URL, never to a redirect's other host. */
  authorization?: string
  /** Hosts (host[:port]) reachable over plain HTTP besides loopback. */
  insecure?: readonly string[]
  /** Idle time on the socket before the request fails. */
  timeoutMs?: number
}

export interface HttpTransport {
  request(url: URL, opts?: HttpOptions): Promise<HttpResponse>
  /** Closes kept-alive connections. */
  close(): void
}

const MAX_REDIRECTS = 5
const DEFAULT_TIMEOUT_MS = 60_000

/**
 * HTTP for registry traffic. Redirects are followed here rather than by a
 * library so the rule is visible: the Authorization header goes to the
 * registry's own origin only (blob storage behind a redirect gets signed URLs,
 * not our token), and a redirect never downgrades to plain HTTP.
 */
export function createHttpTransport(): HttpTransport {
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 8 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 8 }),
  }
  return {
    async request(url, opts = {}) {
      const origin = url.origin
      let current = url
      for (let hop = 0; ; hop++) {
        checkScheme(current, opts.insecure ?? [])
        const headers: Record<string, string> = {
          'user-agent': 'warren-oci/1',
          ...opts.headers,
        }
        if (opts.authorization && current.origin === origin) {
          headers.authorization = opts.authorization
        }
        const res = await send(current, opts.method ?? 'GET', headers, agents, opts.timeoutMs)
        const status = res.statusCode ?? 0
        const location = res.headers.location
        if (status >= 300 && status < 400 && status !== 304 && location) {
          res.resume()
          if (hop >= MAX_REDIRECTS) {
            throw new WarrenError('bad_gateway', `too many redirects from ${url.href}`)
          }
          const next = new URL(location, current)
          if (current.protocol === 'https:' && next.protocol !== 'https:') {
            throw new WarrenError('bad_gateway', `refusing a redirect from HTTPS to ${next.origin}`)
          }
          current = next
          continue
        }
        return {
          status,
          headers: res.headers,
          body: res,
          url: current,
          discard: () => {
            res.resume()
          },
        }
      }
    },
    close() {
      agents['http:'].destroy()
      agents['https:'].destroy()
    },
  }
}

/** HTTPS anywhere; plain HTTP only on loopback and the listed insecure hosts. */
export function schemeAllowed(url: URL, insecure: readonly string[]): boolean {
  if (url.protocol === 'https:') return true
  return url.protocol === 'http:' && (isLoopbackHost(url.host) || insecure.includes(url.host))
}

function checkScheme(url: URL, insecure: readonly string[]): void {
  if (!schemeAllowed(url, insecure)) {
    throw new WarrenError(
      'bad_gateway',
      `refusing to fetch ${url.origin}: only HTTPS is allowed there`,
    )
  }
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  agents: { 'http:': http.Agent; 'https:': https.Agent },
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<IncomingMessage> {
  const lib = url.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const req = lib.request(url, {
      method,
      headers,
      agent: agents[url.protocol as 'http:' | 'https:'],
    })
    req.setTimeout(timeoutMs, () => {
      req.destroy(
        new WarrenError('unavailable', `${url.origin} did not answer for ${timeoutMs} ms`),
      )
    })
    req.on('error', (err) =>
      reject(
        err instanceof WarrenError
          ? err
          : new WarrenError('unavailable', `cannot reach ${url.origin}: ${err.message}`, {
              cause: err,
            }),
      ),
    )
    req.on('response', resolve)
    req.end()
  })
}

/** Reads a whole (small) body, failing past `limit` bytes. */
export async function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      res.body.destroy()
      throw new WarrenError('bad_gateway', `${res.url.href} answered more than ${limit} bytes`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}
