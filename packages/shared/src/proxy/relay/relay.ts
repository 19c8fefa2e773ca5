import { IncomingMessage, type Server, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { Server as TlsServer } from 'node:tls'
import type { Logger } from '../../log.js'
import { REQUEST_ID_HEADER, requestIdFrom, withRequestId } from '../../request-id.js'
import { type ProxyError, rawProxyError, wantsHtml } from '../errors.js'
import { connectionNames, type ForwardTarget, isHopByHop, type Resolution } from '../forward.js'
import {
  HTTPParser,
  type HttpParser,
  methods,
  NO_BODY,
  newParser,
  STOP_AFTER_HEAD,
} from './llhttp.js'
import type { NativePins, PinOwner } from './native-pins.js'
import { RawUpstreams, type Upstream, type UpstreamUser } from './upstreams.js'

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
  /** At once when it can (no promise, no turn of the event loop), else later. */
  resolve: (req: IncomingMessage) => Resolution | Promise<Resolution>
  /** Requests the HTTP server answers itself (the edge's /metrics). */
  servedByServer?: (req: IncomingMessage) => boolean
  /** Called as a request begins; what it returns, with the answer's status. */
  observe?: () => (status: number) => void
  /** At debug level, a line per request answered (as handleWithRequestId's). */
  log?: Logger
  /**
   * Connections whose target allows it (ForwardTarget.pin) are carried on
   * natively after a request; `record` then takes their answers (in
   * batches) in place of `observe`. Not at debug level: C writes no log.
   */
  pins?: NativePins | undefined
  record?: (status: number, seconds: number) => void
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
  const owner: PinOwner = { record: opts.record }
  let closed = false
  const relay: Relay = {
    accept(socket, first, handOff) {
      if (closed) {
        socket.destroy()
        return
      }
      const c = new RelayConnection(socket, opts, handOff, upstreams, owner, relay, () =>
        connections.delete(c),
      )
      connections.add(c)
      if (first?.length) c.feed(first)
    },
    close() {
      closed = true
      upstreams.close()
      opts.pins?.close(owner)
      for (const c of connections) c.destroy()
      connections.clear()
    },
  }
  return relay
}

class RelayConnection implements UpstreamUser {
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
  private acc: { headers: string[]; url: string } = { headers: [], url: '' }

  // The request being answered, and where it goes.
  private req!: IncomingMessage
  private reqHead!: Head
  /** Its head as the client sent it. */
  private rawHead!: Buffer
  private target!: ForwardTarget
  private done: ((status: number) => void) | undefined
  private attempt = 0
  // Its exchange with the upstream (one at a time; reset by `exchange`).
  private upstream: Upstream | undefined
  private status = 0
  private informational = false
  private complete = false
  private broken = false
  private received = false
  private answering = false
  private forwarded = false
  private upstreamKeepAlive = false
  private idleMs: number | undefined
  private answerHeaders: string[] = []
  /**
   * For a client that closes after this request, the answer's bytes held
   * until its final head is whole, which then says so (see closingHead);
   * undefined once it went out, or for a client that stays.
   */
  private heldHead: Buffer | undefined

  constructor(
    private readonly socket: Socket,
    private readonly opts: RelayOptions,
    private readonly handOffTo: HandOff,
    private readonly upstreams: RawUpstreams,
    private readonly owner: PinOwner,
    private readonly relay: Relay,
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
    const rp = this.responses
    rp[HTTPParser.kOnMessageBegin] = () => {
      // Anything after the answer is not an answer to this client.
      if (this.complete) this.broken = true
    }
    rp[HTTPParser.kOnHeaders] = (h: string[]) => this.answerHeaders.push(...h)
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
      const headers = h ?? this.answerHeaders
      this.answerHeaders = []
      if (statusCode === 101 || upgrade) this.broken = true
      this.informational = statusCode < 200
      if (this.informational) return 0
      const isHead = this.reqHead.method === 'HEAD'
      this.status = statusCode
      // llhttp judges before it learns a HEAD's answer has no body (it would end at EOF).
      this.upstreamKeepAlive =
        keepAlive || (isHead && major === 1 && minor === 1 && !saysClose(headers))
      this.idleMs = keepAliveTimeout(headers)
      return isHead ? NO_BODY : 0
    }
    rp[HTTPParser.kOnBody] = () => {}
    rp[HTTPParser.kOnMessageComplete] = () => {
      if (this.informational) this.informational = false
      else this.complete = true
    }
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
    socket.on('timeout', this.onIdle)
    socket.on('drain', this.onDrain)
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
    if (this.headTimer) {
      clearTimeout(this.headTimer)
      this.headTimer = undefined
    }
    if (ret < d.length) this.hold(d.subarray(ret))
    // The next head is parsed from a clean state.
    this.parser.initialize(HTTPParser.REQUEST, {}, 0, 0)
    this.busy = true
    this.serve(head, raw)
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

  // The idle timer runs on while a request is answered (every byte moved
  // restarts it): only a connection waiting for its next request is idle.
  private readonly onIdle = () => {
    if (!this.busy) this.destroy()
  }

  private readonly onDrain = () => this.upstream?.socket.resume()

  private readonly onClose = () => {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.headTimer)
    const up = this.upstream
    if (up) {
      // The request ends with its client: its upstream is dropped, its wait settled.
      this.detach(up)
      up.socket.destroy()
      this.settle()
    }
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
    const pending = this.pending
    if (!pending) return
    this.pending = undefined
    if (this.socket.isPaused()) this.socket.resume()
    this.feed(pending)
  }

  private serve(head: Head, raw: Buffer): void {
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
    this.req = req
    this.reqHead = head
    this.rawHead = raw
    this.done = this.finisher(req, requestId)
    let resolution: Resolution | Promise<Resolution>
    try {
      resolution = withRequestId(requestId, () => this.opts.resolve(req))
    } catch {
      resolution = PROXY_ERROR
    }
    if (resolution instanceof Promise) {
      resolution.then(
        (r) => this.resolved(r),
        () => this.resolved(PROXY_ERROR),
      )
    } else this.resolved(resolution)
  }

  private resolved(resolution: Resolution): void {
    if (this.closed) {
      if ('target' in resolution) resolution.target.cancel?.settled()
      return
    }
    if ('error' in resolution) {
      this.answer(resolution.error, this.reqHead.keepAlive)
      this.next(this.reqHead.keepAlive)
      return
    }
    this.target = resolution.target
    this.attempt = 0
    this.forward()
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

  /** The socket is no longer this connection's: its listeners go, and the connection ends. */
  private letGo(): void {
    const s = this.socket
    s.removeListener('data', this.onData)
    s.removeListener('end', this.onEnd)
    s.removeListener('error', this.onError)
    s.removeListener('close', this.onClose)
    s.removeListener('timeout', this.onIdle)
    s.removeListener('drain', this.onDrain)
    s.setTimeout(0)
    this.onClose()
  }

  /** The connection, from `raw` (a request's first byte) on, to the HTTP server. */
  private handOff(raw: Buffer): void {
    const s = this.socket
    this.letGo()
    const data = this.pending ? Buffer.concat([raw, this.pending]) : raw
    this.pending = undefined
    this.handOffTo(s, data)
    if (s.isPaused()) s.resume()
  }

  private answer(e: ProxyError, keepAlive: boolean): void {
    this.socket.write(rawProxyError(e, wantsHtml(this.req.headers), keepAlive))
    this.done?.(e.status)
  }

  /** Takes a connection for the request (again, after a reused one failed) and sends it. */
  private forward(): void {
    const t = this.target
    const taken = this.upstreams.take(t)
    if (!(taken instanceof Promise)) {
      this.exchange(taken)
      return
    }
    taken.then(
      (up) => {
        if (this.closed) {
          up.socket.destroy()
          t.cancel?.settled()
          return
        }
        this.exchange(up)
      },
      (err: Error) => {
        t.cancel?.settled()
        if (this.closed) return
        this.answer(t.cancel?.reason ?? t.unreachable(err), this.reqHead.keepAlive)
        this.next(this.reqHead.keepAlive)
      },
    )
  }

  /** Sends the request on `up`; its answer comes back through the UpstreamUser methods. */
  private exchange(up: Upstream): void {
    const t = this.target
    this.upstream = up
    up.user = this
    this.responses.initialize(HTTPParser.RESPONSE, {}, 0, 0)
    this.status = 0
    this.informational = false
    this.complete = false
    this.broken = false
    this.received = false
    this.answering = false
    this.forwarded = false
    this.upstreamKeepAlive = false
    this.idleMs = undefined
    this.answerHeaders = []
    this.heldHead = this.reqHead.keepAlive ? undefined : EMPTY
    const cancel = t.cancel
    if (cancel) {
      cancel.onAbort = this.onAbort
      if (cancel.reason) {
        this.onAbort()
        return
      }
    }
    up.socket.write(requestHead(this.req, t))
  }

  private readonly onAbort = () => {
    if (!this.answering) this.fail(new Error('the target stopped serving'))
  }

  /** The answer began (or ended): the request can no longer be cut short. */
  private settle(): void {
    if (this.answering) return
    this.answering = true
    const cancel = this.target.cancel
    if (cancel) {
      cancel.onAbort = undefined
      cancel.settled()
    }
  }

  /** The upstream is no longer this request's. */
  private detach(up: Upstream): void {
    up.user = undefined
    this.upstream = undefined
    const cancel = this.target.cancel
    if (cancel) cancel.onAbort = undefined
  }

  private finish(): void {
    const up = this.upstream as Upstream
    this.detach(up)
    this.settle()
    this.done?.(this.status)
    const keepAlive = this.reqHead.keepAlive && this.upstreamKeepAlive
    if (keepAlive && this.pinned(up)) return
    if (this.upstreamKeepAlive) this.upstreams.release(up, this.idleMs)
    else up.socket.destroy()
    this.next(keepAlive)
  }

  /**
   * After a request answered in full on a kept connection: the client and
   * upstream connections carried on natively, if the target allows it and
   * nothing is in flight. The pin gives the client back to a new
   * RelayConnection when it meets a request it does not carry.
   */
  private pinned(up: Upstream): boolean {
    const { pins, log } = this.opts
    const terms = this.target.pin
    const method = this.reqHead.method
    if (
      !pins ||
      !terms ||
      this.pending ||
      this.clientEnded ||
      (method !== 'GET' && method !== 'HEAD') ||
      log?.isLevelEnabled('debug')
    )
      return false
    const handOffTo = this.handOffTo
    const relay = this.relay
    const pinned = pins.pin({
      client: this.socket,
      upstream: up.socket,
      head: this.rawHead,
      target: { ...this.target, pin: terms },
      owner: this.owner,
      resume: (socket, data) => relay.accept(socket, data, handOffTo),
    })
    if (pinned) this.letGo()
    return pinned
  }

  /** The upstream failed: retried, answered 502, or (mid-answer) the client cut too. */
  private fail(err: Error): void {
    const up = this.upstream
    if (!up) return
    const t = this.target
    this.detach(up)
    up.socket.destroy()
    if (this.closed) {
      this.settle()
      return
    }
    if (!this.received && up.reused && this.attempt < RETRIES && !t.cancel?.reason) {
      this.attempt++
      this.forward()
      return
    }
    this.settle()
    if (this.forwarded) {
      this.socket.destroy()
      return
    }
    const keepAlive = this.reqHead.keepAlive && !this.broken
    this.answer(t.cancel?.reason ?? t.unreachable(err), keepAlive)
    // After an upstream broke the protocol, nothing more is read on this connection.
    this.next(keepAlive)
  }

  upstreamData(chunk: Buffer): void {
    this.received = true
    const ret = this.responses.execute(chunk)
    if (typeof ret !== 'number' || this.broken) {
      this.fail(new Error('the upstream broke the HTTP protocol'))
      return
    }
    this.settle()
    this.target.onTraffic?.(chunk.length, chunk, false)
    let out = chunk
    const held = this.heldHead
    if (held) {
      out = held.length ? Buffer.concat([held, chunk]) : chunk
      // `status` is set once the final (not 1xx) head is whole.
      if (!this.status) {
        this.heldHead = out
        return
      }
      this.heldHead = undefined
      out = closingHead(out)
    }
    const flushed = this.socket.write(out)
    this.forwarded = true
    if (this.complete) this.finish()
    else if (!flushed) this.upstream?.socket.pause()
  }

  upstreamEnd(): void {
    // A close-delimited answer ends here.
    const err = this.responses.finish()
    if (!err && this.complete && !this.broken) {
      this.upstreamKeepAlive = false
      this.finish()
    } else this.fail(upstreamClosed())
  }

  upstreamGone(err: Error | undefined): void {
    this.fail(err ?? upstreamClosed())
  }
}

const PROXY_ERROR: Resolution = { error: { status: 500, message: 'proxy error' } }
const EMPTY = Buffer.alloc(0)

/**
 * `bytes` — any 1xx heads, the final head, maybe the body's start, as the
 * upstream sent them — with the final head telling the client the
 * connection closes after it, in place of the server's own Connection and
 * Keep-Alive (and what Connection names): the upstream connection stays
 * open for the next request, the client's does not. llhttp took every head
 * whole, so each ends at its first blank line and begins with a status line.
 */
function closingHead(bytes: Buffer): Buffer {
  for (let start = 0; ; ) {
    const end = bytes.indexOf('\r\n\r\n', start)
    // Not a head this can read (llhttp let a bare LF end it): passed on as it came.
    if (end < 0) return bytes
    if (Number(bytes.toString('latin1', start + 9, start + 12)) < 200) {
      start = end + 4
      continue
    }
    const lines = bytes.toString('latin1', start, end).split('\r\n')
    const name = (line: string) => line.slice(0, line.indexOf(':')).toLowerCase()
    const named = new Set(['connection', 'keep-alive'])
    for (const line of lines) {
      if (name(line) !== 'connection') continue
      for (const n of line.slice(line.indexOf(':') + 1).split(','))
        named.add(n.trim().toLowerCase())
    }
    // The body goes on as the server framed it, whatever Connection names.
    named.delete('content-length')
    named.delete('transfer-encoding')
    const kept = lines.filter((line, i) => i === 0 || !named.has(name(line)))
    return Buffer.concat([
      bytes.subarray(0, start),
      Buffer.from(`${kept.join('\r\n')}\r\nconnection: close\r\n\r\n`, 'latin1'),
      bytes.subarray(end + 4),
    ])
  }
}

function upstreamClosed(): Error {
  return Object.assign(new Error('the upstream closed the connection'), { code: 'ECONNRESET' })
}

/** The request's head as the upstream gets it: hop-by-hop headers dropped, the target's set. */
function requestHead(req: IncomingMessage, t: ForwardTarget): string {
  const headers = req.headers
  const set = t.setHeaders
  const remove = t.removeHeaders
  const named = headers.connection ? connectionNames(headers.connection) : undefined
  let text = `${req.method} ${req.url} HTTP/1.1\r\n`
  for (const k in headers) {
    const v = headers[k]
    if (
      v === undefined ||
      isHopByHop(k, named) ||
      remove?.includes(k) ||
      (set !== undefined && Object.hasOwn(set, k))
    )
      continue
    if (Array.isArray(v)) for (const one of v) text += `${k}: ${one}\r\n`
    else text += `${k}: ${v}\r\n`
  }
  if (set) for (const k in set) text += `${k}: ${set[k]}\r\n`
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
