import { IncomingMessage, type Server, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { Server as TlsServer } from 'node:tls'
import type { Logger } from '../../log.js'
import { REQUEST_ID_HEADER, requestIdFrom, withRequestId } from '../../request-id.js'
import { type ProxyError, rawProxyError, wantsHtml } from '../errors.js'
import { type ForwardTarget, forwardHeaders, type Resolution } from '../forward.js'
import {
  HTTPParser,
  type HttpParser,
  methods,
  NO_BODY,
  newParser,
  STOP_AFTER_HEAD,
} from './llhttp.js'
import { RawUpstreams, type Upstream } from './upstreams.js'

/** As the HTTP servers of the proxies (see keepConnectionsLong): an idle client connection is kept this long. */
const IDLE_MS = 65_000
/** A request head must arrive whole within this long. */
const HEAD_MS = 66_000
/** Pipelined bytes held while a request is answered; beyond, the client is paused. */
const MAX_PENDING = 64 * 1024
/** Fresh connections tried for a request whose reused connection was closed before answering. */
const RETRIES = 2

type Head = {
  major: number
  minor: number
  rawHeaders: string[]
  method: string
  url: string
  upgrade: boolean
  keepAlive: boolean
}

/** IncomingMessage's own way of taking a head's headers, as Node's HTTP server uses it. */
interface AddHeaderLines {
  _addHeaderLines(headers: string[], n: number): void
}

export interface RelayOptions {
  resolve: (req: IncomingMessage) => Promise<Resolution>
  /** Requests the HTTP server answers itself (the edge's /metrics). */
  servedByServer?: (req: IncomingMessage) => boolean
  /** Called as a request begins; what it returns, with the answer's status. */
  observe?: () => (status: number) => void
  /** At debug level, a line per request answered (as handleWithRequestId's). */
  log?: Logger
}

export type HandOff = (socket: Socket, data: Buffer) => void

export interface Relay {
  /**
   * Takes a new connection, and its first bytes if they were read already.
   * `handOff` takes it on from the request whose raw bytes begin `data`: the
   * HTTP server's way, for what the relay does not carry itself.
   */
  accept(socket: Socket, first: Buffer | undefined, handOff: HandOff): void
  close(): void
}

/**
 * The proxies' fast path for plain requests: requests without a body over
 * HTTP/1.1, the bulk of what a browser or an API client sends. Each head is
 * parsed by Node's own llhttp and resolved as the HTTP server's requests are
 * (the same resolver, the same IncomingMessage); it goes upstream over a
 * kept-alive connection, and the answer comes back as the upstream's bytes,
 * framed by llhttp so no byte past the answer reaches the client. No
 * ServerResponse, no undici request, no re-encoding of the answer.
 *
 * A request it does not carry — a body, an upgrade, another HTTP version,
 * an `Expect`, an absolute-form target, what the server answers itself —
 * hands the connection, from that request's first byte on, to the HTTP
 * server, once the answers before it are complete. Requests are answered one
 * at a time; pipelined ones wait, in order.
 */
export function createRelay(opts: RelayOptions): Relay {
  const upstreams = new RawUpstreams()
  const connections = new Set<RelayConnection>()
  return {
    accept(socket, first, handOff) {
      const c = new RelayConnection(socket, opts, handOff, upstreams, () => connections.delete(c))
      connections.add(c)
      if (first?.length) c.feed(first)
    },
    close() {
      upstreams.close()
      for (const c of connections) c.destroy()
      connections.clear()
    },
  }
}

class RelayConnection {
  private readonly parser: HttpParser = newParser(HTTPParser.REQUEST)
  private readonly responses: HttpParser = newParser(HTTPParser.RESPONSE)
  private head: Head | undefined
  /** Raw bytes of a head not yet complete. */
  private partial: Buffer[] = []
  /** Raw bytes that arrived while a request was being answered. */
  private pending: Buffer | undefined
  private busy = false
  private clientEnded = false
  private closed = false
  private headTimer: NodeJS.Timeout | undefined
  /** The upstream connection of the request being answered. */
  private upstream: Upstream | undefined
  private acc: { headers: string[]; url: string } = { headers: [], url: '' }

  constructor(
    private readonly socket: Socket,
    private readonly opts: RelayOptions,
    private readonly handOffTo: HandOff,
    private readonly upstreams: RawUpstreams,
    private readonly gone: () => void,
  ) {
    const p = this.parser
    p[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
      this.acc.headers.push(...headers)
      this.acc.url += url
    }
    p[HTTPParser.kOnHeadersComplete] = (
      major: number,
      minor: number,
      headers: string[] | undefined,
      method: number,
      url: string | undefined,
      _status: number,
      _statusText: string,
      upgrade: boolean,
      keepAlive: boolean,
    ) => {
      this.head = {
        major,
        minor,
        rawHeaders: headers ?? this.acc.headers,
        method: methods[method] ?? 'GET',
        url: url || this.acc.url,
        upgrade,
        keepAlive,
      }
      this.acc = { headers: [], url: '' }
      // execute() returns at the head's end: what follows is the relay's to judge.
      return STOP_AFTER_HEAD
    }
    p[HTTPParser.kOnBody] = () => {}
    p[HTTPParser.kOnMessageComplete] = () => {}
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
    socket.on('timeout', this.onIdle)
    socket.setNoDelay(true)
    socket.setTimeout(IDLE_MS)
  }

  destroy(): void {
    this.socket.destroy()
    this.onClose()
  }

  /** Parses `d` up to the end of the next complete head, and answers that request. */
  feed(d: Buffer): void {
    if (this.closed) return
    const ret = this.parser.execute(d)
    if (typeof ret !== 'number') {
      this.refuseBadRequest(ret.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400)
      return
    }
    const head = this.head
    if (!head) {
      this.partial.push(d)
      this.headTimer ??= setTimeout(() => this.destroy(), HEAD_MS)
      return
    }
    this.head = undefined
    const raw = this.partial.length
      ? Buffer.concat([...this.partial, d.subarray(0, ret)])
      : d.subarray(0, ret)
    this.partial = []
    clearTimeout(this.headTimer)
    this.headTimer = undefined
    if (ret < d.length) this.hold(d.subarray(ret))
    // The next head is parsed from a clean state.
    this.parser.initialize(HTTPParser.REQUEST, {}, 0, 0)
    this.busy = true
    this.socket.setTimeout(0)
    void this.serve(head, raw)
  }

  private readonly onData = (d: Buffer) => {
    if (this.busy) this.hold(d)
    else this.feed(d)
  }

  private hold(d: Buffer): void {
    this.pending = this.pending ? Buffer.concat([this.pending, d]) : d
    if (this.pending.length > MAX_PENDING) this.socket.pause()
  }

  private readonly onEnd = () => {
    this.clientEnded = true
    if (!this.busy) this.socket.end()
  }

  private readonly onError = () => this.destroy()

  private readonly onIdle = () => this.destroy()

  private readonly onClose = () => {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.headTimer)
    this.upstream?.socket.destroy()
    this.upstream = undefined
    this.parser.close()
    this.responses.close()
    this.gone()
  }

  private refuseBadRequest(status: number): void {
    this.socket.removeListener('data', this.onData)
    this.onClose()
    this.socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\n\r\n`)
    this.socket.destroySoon()
  }

  /** The request after an answer: the next pipelined head, or waiting for one. */
  private next(keepAlive: boolean): void {
    this.busy = false
    if (this.closed) return
    if (!keepAlive || this.clientEnded) {
      this.socket.end()
      return
    }
    this.socket.setTimeout(IDLE_MS)
    const pending = this.pending
    this.pending = undefined
    if (this.socket.isPaused()) this.socket.resume()
    if (pending) this.feed(pending)
  }

  private async serve(head: Head, raw: Buffer): Promise<void> {
    const req = new IncomingMessage(this.socket)
    req.method = head.method
    req.url = head.url
    req.httpVersionMajor = head.major
    req.httpVersionMinor = head.minor
    req.httpVersion = `${head.major}.${head.minor}`
    req.rawHeaders = head.rawHeaders
    // As Node's HTTP server fills them (its rules for repeated headers), on first use.
    ;(req as unknown as AddHeaderLines)._addHeaderLines(head.rawHeaders, head.rawHeaders.length)
    req.complete = true
    if (!this.carries(req, head)) {
      this.handOff(raw)
      return
    }
    const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER])
    req.headers[REQUEST_ID_HEADER] = requestId
    const done = this.finisher(req, requestId)
    let resolution: Resolution
    try {
      resolution = await withRequestId(requestId, () => this.opts.resolve(req))
    } catch {
      resolution = { error: { status: 500, message: 'proxy error' } }
    }
    if (this.closed) {
      if ('target' in resolution) resolution.target.cancel?.settled()
      return
    }
    if ('error' in resolution) {
      this.answer(req, resolution.error, done, head.keepAlive)
      this.next(head.keepAlive)
      return
    }
    this.forward(req, head, resolution.target, done, 0)
  }

  /** What records a request's answer: metrics, and the debug line. */
  private finisher(
    req: IncomingMessage,
    requestId: string,
  ): ((status: number) => void) | undefined {
    const observed = this.opts.observe?.()
    const log = this.opts.log
    if (!log?.isLevelEnabled('debug')) return observed
    const started = Date.now()
    return (status) => {
      observed?.(status)
      withRequestId(requestId, () =>
        log.debug({ method: req.method, status, ms: Date.now() - started }, 'proxied'),
      )
    }
  }

  /** Whether this request is one the relay carries (see createRelay). */
  private carries(req: IncomingMessage, head: Head): boolean {
    const h = req.headers
    return (
      head.major === 1 &&
      head.minor === 1 &&
      !head.upgrade &&
      head.url.startsWith('/') &&
      (h['content-length'] === undefined || h['content-length'] === '0') &&
      h['transfer-encoding'] === undefined &&
      h.expect === undefined &&
      !this.opts.servedByServer?.(req)
    )
  }

  /** The connection, from `raw` (a request's first byte) on, to the HTTP server. */
  private handOff(raw: Buffer): void {
    const s = this.socket
    s.removeListener('data', this.onData)
    s.removeListener('end', this.onEnd)
    s.removeListener('error', this.onError)
    s.removeListener('close', this.onClose)
    s.removeListener('timeout', this.onIdle)
    s.setTimeout(0)
    this.onClose()
    const data = this.pending ? Buffer.concat([raw, this.pending]) : raw
    this.pending = undefined
    this.handOffTo(s, data)
    if (s.isPaused()) s.resume()
  }

  private answer(
    req: IncomingMessage,
    e: ProxyError,
    done: ((status: number) => void) | undefined,
    keepAlive: boolean,
  ): void {
    this.socket.write(rawProxyError(e, wantsHtml(req.headers), keepAlive))
    done?.(e.status)
  }

  private forward(
    req: IncomingMessage,
    head: Head,
    t: ForwardTarget,
    done: ((status: number) => void) | undefined,
    attempt: number,
  ): void {
    this.upstreams.take(t).then(
      (up) => {
        if (this.closed) {
          up.socket.destroy()
          t.cancel?.settled()
          return
        }
        this.exchange(req, head, t, done, up, attempt)
      },
      (err: Error) => {
        t.cancel?.settled()
        if (this.closed) return
        this.answer(req, t.cancel?.reason ?? t.unreachable(err), done, head.keepAlive)
        this.next(head.keepAlive)
      },
    )
  }

  /** Sends the request on `up` and relays its answer. */
  private exchange(
    req: IncomingMessage,
    head: Head,
    t: ForwardTarget,
    done: ((status: number) => void) | undefined,
    up: Upstream,
    attempt: number,
  ): void {
    this.upstream = up
    const sock = up.socket
    const client = this.socket
    const rp = this.responses
    rp.initialize(HTTPParser.RESPONSE, {}, 0, 0)
    const isHead = head.method === 'HEAD'
    let status = 0
    let informational = false
    let complete = false
    let broken = false
    let received = false
    let answering = false
    let forwarded = false
    let upstreamKeepAlive = false
    let idleMs: number | undefined
    let headers: string[] = []
    rp[HTTPParser.kOnMessageBegin] = () => {
      // Anything after the answer is not an answer to this client.
      if (complete) broken = true
    }
    rp[HTTPParser.kOnHeaders] = (h: string[]) => headers.push(...h)
    rp[HTTPParser.kOnHeadersComplete] = (
      major: number,
      minor: number,
      h: string[] | undefined,
      _method: number,
      _url: string,
      statusCode: number,
      _statusText: string,
      upgrade: boolean,
      keepAlive: boolean,
    ) => {
      if (h) headers = h
      if (statusCode === 101 || upgrade) broken = true
      informational = statusCode < 200
      if (!informational) {
        status = statusCode
        // llhttp judges before it learns a HEAD's answer has no body (it would end at EOF).
        upstreamKeepAlive =
          keepAlive || (isHead && major === 1 && minor === 1 && !saysClose(headers))
        idleMs = keepAliveTimeout(headers)
      }
      headers = []
      return isHead && !informational ? NO_BODY : 0
    }
    rp[HTTPParser.kOnBody] = () => {}
    rp[HTTPParser.kOnMessageComplete] = () => {
      if (informational) informational = false
      else complete = true
    }

    const settle = () => {
      if (answering) return
      answering = true
      t.cancel?.settled()
    }
    const detach = () => {
      sock.removeListener('data', onData)
      sock.removeListener('end', onEnd)
      sock.removeListener('close', onGone)
      sock.removeListener('error', onGone)
      client.removeListener('drain', onDrain)
      t.cancel?.signal.removeListener('abort', onAbort)
      this.upstream = undefined
    }
    const finish = () => {
      detach()
      settle()
      done?.(status)
      if (upstreamKeepAlive) this.upstreams.release(up, idleMs)
      else sock.destroy()
      this.next(head.keepAlive && upstreamKeepAlive)
    }
    /** The upstream failed: retried, answered 502, or (mid-answer) the client cut too. */
    const fail = (err: Error) => {
      detach()
      sock.destroy()
      if (this.closed) {
        settle()
        return
      }
      if (!received && up.reused && attempt < RETRIES && !t.cancel?.reason) {
        this.forward(req, head, t, done, attempt + 1)
        return
      }
      settle()
      if (forwarded) {
        client.destroy()
        return
      }
      this.answer(req, t.cancel?.reason ?? t.unreachable(err), done, head.keepAlive && !broken)
      // After an upstream broke the protocol, nothing more is read on this connection.
      this.next(head.keepAlive && !broken)
    }
    const onData = (chunk: Buffer) => {
      received = true
      const ret = rp.execute(chunk)
      if (typeof ret !== 'number' || broken) {
        fail(new Error('the upstream broke the HTTP protocol'))
        return
      }
      settle()
      t.onTraffic?.(chunk.length, chunk, false)
      const flushed = client.write(chunk)
      forwarded = true
      if (complete) finish()
      else if (!flushed) sock.pause()
    }
    const onDrain = () => sock.resume()
    const onEnd = () => {
      // A close-delimited answer ends here.
      const err = rp.finish()
      if (!err && complete && !broken) {
        upstreamKeepAlive = false
        finish()
      } else fail(upstreamClosed())
    }
    const onGone = (err?: Error | boolean) => fail(err instanceof Error ? err : upstreamClosed())
    const onAbort = () => {
      if (!answering) fail(new Error('the target stopped serving'))
    }
    sock.on('data', onData)
    sock.on('end', onEnd)
    sock.on('close', onGone)
    sock.on('error', onGone)
    client.on('drain', onDrain)
    t.cancel?.signal.once('abort', onAbort)
    if (t.cancel?.reason) {
      onAbort()
      return
    }
    sock.write(requestHead(req, t))
  }
}

function upstreamClosed(): Error {
  return Object.assign(new Error('the upstream closed the connection'), { code: 'ECONNRESET' })
}

/** The request's head as the upstream gets it: hop-by-hop headers dropped, the target's set. */
function requestHead(req: IncomingMessage, t: ForwardTarget): string {
  const headers = { ...forwardHeaders(req.headers, false, t.removeHeaders), ...t.setHeaders }
  let text = `${req.method} ${req.url} HTTP/1.1\r\n`
  for (const [k, v] of Object.entries(headers)) {
    if (Array.isArray(v)) for (const one of v) text += `${k}: ${one}\r\n`
    else text += `${k}: ${v}\r\n`
  }
  return `${text}\r\n`
}

/** Whether a head's Connection header says `close`. */
function saysClose(raw: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    if (
      (raw[i] as string).toLowerCase() === 'connection' &&
      /(^|,)\s*close\s*(,|$)/i.test(raw[i + 1] ?? '')
    )
      return true
  }
  return false
}

/** The server's `Keep-Alive: timeout=N`, in ms. */
function keepAliveTimeout(raw: string[]): number | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).length !== 10 || (raw[i] as string).toLowerCase() !== 'keep-alive')
      continue
    const m = /(?:^|[\s,])timeout=(\d+)/i.exec(raw[i + 1] ?? '')
    if (m) return Number(m[1]) * 1000
  }
  return undefined
}

/**
 * Puts `relay` in front of an HTTP(S) server of its own: each connection (a
 * decrypted one for HTTPS) goes to the relay first, and to the server from
 * the first request the relay does not carry. The server's
 * `closeAllConnections` ends the relay's connections too.
 */
export function relayInFront(server: Server, relay: Relay): void {
  const event = server instanceof TlsServer ? 'secureConnection' : 'connection'
  const own = server.listeners(event)
  if (own.length !== 1) throw new Error(`expected only the HTTP server's own ${event} listener`)
  const toHttp = own[0] as (socket: Socket) => void
  server.removeListener(event, toHttp)
  const handOff: HandOff = (socket, data) => {
    toHttp.call(server, socket)
    socket.emit('data', data)
  }
  server.on(event, (socket: Socket) => relay.accept(socket, undefined, handOff))
  const closeAll = server.closeAllConnections.bind(server)
  server.closeAllConnections = () => {
    closeAll()
    relay.close()
  }
}
