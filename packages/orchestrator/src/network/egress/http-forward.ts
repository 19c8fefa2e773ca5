import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import {
  type Carry,
  connectionNames,
  isHopByHop,
  type NativeCarry,
  type ProxyError,
  sendProxyError,
} from '@warren/shared'
import { giveBack, takeBuffer } from './relay.js'
import {
  ChunkedDecoder,
  type Framing,
  framingOf,
  MAX_RESPONSE_HEAD,
  parseResponseHead,
} from './response-framing.js'

const DIAL_TIMEOUT_MS = 10_000
const IDLE_TIMEOUT_MS = 300_000
/** A body with at least this much still to come is carried by the kernel (when it can be). */
const CARRY_MIN = 1 << 20

/**
 * Name and value pairs of `raw` (Node's rawHeaders) less the hop-by-hop
 * ones, and Expect, which this hop answers itself.
 */
function endToEnd(raw: Array<[string, string]>): Array<[string, string]> {
  const connection = raw.filter(([k]) => k.toLowerCase() === 'connection').map(([, v]) => v)
  const named = connection.length ? connectionNames(connection) : undefined
  return raw.filter(([k]) => {
    const name = k.toLowerCase()
    return name !== 'expect' && !isHopByHop(name, named)
  })
}

function pairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!])
  return out
}

/** One response being read from a link and written to the client. */
interface Exchange {
  method: string
  res: ServerResponse
  head: string
  framing?: Framing
  /** Bytes of a Content-Length body still to come. */
  left: number
  chunked?: ChunkedDecoder
  /** Whether any byte of the response has come. */
  answered: boolean
  /** The upstream said it closes after this response (or spoke HTTP/1.0). */
  closing: boolean
  /** Called once: the response is complete (or failed), with why when failed. */
  settle(failure?: 'unreachable' | 'broken'): void
}

/**
 * A connection of the proxy's own to one judged address, carrying one
 * client connection's requests there one at a time. Response bytes are read
 * into one buffer of its own (no allocation per read, see relay.ts) and
 * written on through Node's `ServerResponse`; reading pauses until those
 * writes have left the buffer. The rest of a large body of known length is
 * then carried by the kernel, when a NativeCarry is given: spliced from this
 * link's socket to the client's, never read into the process.
 */
class UpstreamLink {
  readonly socket: Socket
  private exchange: Exchange | undefined
  /** Writes to the client that still hold the buffer. */
  private holding = 0
  private paused = false
  private carrying: Carry | undefined
  /** Whether the link may carry another request. */
  reusable = true
  private readonly buffer = takeBuffer()

  constructor(
    readonly address: string,
    port: number,
    private readonly carry: NativeCarry | undefined,
  ) {
    this.socket = connect({
      host: address,
      port,
      onread: {
        buffer: this.buffer,
        callback: (n, buf) => this.onRead(n, buf),
      },
    })
    this.socket.setNoDelay(true)
    this.socket.on('error', () => this.onGone())
    this.socket.on('end', () => this.onGone())
    this.socket.on('close', () => {
      this.onGone()
      // A write still holding the buffer keeps it out of the pool.
      if (this.holding === 0) giveBack(this.buffer)
    })
  }

  /** Resolves once connected; rejects on failure or after the timeout. */
  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        this.socket.destroy()
        reject(err)
      }
      const onDialTimeout = () =>
        fail(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }))
      this.socket.setTimeout(DIAL_TIMEOUT_MS, onDialTimeout)
      this.socket.once('error', fail)
      this.socket.once('connect', () => {
        this.socket.off('timeout', onDialTimeout)
        // From now on a link idle this long (no answer, a stalled body, or
        // kept unused) is closed, as undici's header and body timeouts did.
        this.socket.setTimeout(IDLE_TIMEOUT_MS, () => this.destroy())
        this.socket.off('error', fail)
        resolve()
      })
    })
  }

  get idle(): boolean {
    return !this.exchange && this.reusable && !this.socket.destroyed && this.socket.writable
  }

  /** Starts reading the response to a request whose head is about to be written. */
  begin(exchange: Exchange): void {
    this.exchange = exchange
  }

  destroy(): void {
    this.reusable = false
    this.carrying?.cancel()
    this.carrying = undefined
    this.socket.destroy()
  }

  private onGone(): void {
    this.reusable = false
    const ex = this.exchange
    if (!ex) return
    if (ex.framing?.kind === 'close') {
      this.complete(ex)
      return
    }
    this.exchange = undefined
    ex.settle(ex.answered ? 'broken' : 'unreachable')
  }

  private complete(ex: Exchange): void {
    this.exchange = undefined
    if (ex.closing) this.reusable = false
    ex.res.end()
    ex.settle()
  }

  /** Gives up on a response the proxy cannot frame; false, for onRead to return. */
  private fail(ex: Exchange): false {
    this.exchange = undefined
    this.destroy()
    ex.settle('broken')
    return false
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    const ex = this.exchange
    // Bytes nobody asked for: the link is out of step with its server.
    if (!ex) {
      this.destroy()
      return false
    }
    ex.answered = true
    let i = 0
    while (!ex.framing) {
      const take = buf.subarray(i, n)
      ex.head += Buffer.from(take.buffer, take.byteOffset, take.length).toString('latin1')
      const end = ex.head.indexOf('\r\n\r\n')
      if (end === -1) {
        if (ex.head.length > MAX_RESPONSE_HEAD) return this.fail(ex)
        return true
      }
      i = n - (ex.head.length - (end + 4))
      const text = ex.head.slice(0, end)
      const head = parseResponseHead(text)
      ex.head = ''
      // 1xx answers (100 Continue, 103) are this hop's to swallow; 101 is never asked for here.
      if (head && head.status >= 100 && head.status < 200 && head.status !== 101) continue
      const framing = head && head.status !== 101 ? framingOf(ex.method, head) : undefined
      if (!head || !framing) return this.fail(ex)
      ex.closing =
        text.startsWith('HTTP/1.0 ') ||
        head.headers.some(
          ([k, v]) => k.toLowerCase() === 'connection' && /(^|,)\s*close\s*(,|$)/i.test(v),
        )
      try {
        ex.res.writeHead(head.status, endToEnd(head.headers).flat())
      } catch {
        return this.fail(ex)
      }
      ex.framing = framing
      if (framing.kind === 'length') ex.left = framing.length
      if (framing.kind === 'chunked') ex.chunked = new ChunkedDecoder()
      if (framing.kind === 'none' || (framing.kind === 'length' && ex.left === 0)) {
        // Nothing may follow a body-less answer before the next request.
        if (i < n) this.reusable = false
        this.complete(ex)
        return this.readOn()
      }
    }
    const write = (from: number, to: number) => this.write(ex.res, buf, from, to)
    if (ex.framing.kind === 'length') {
      const take = Math.min(ex.left, n - i)
      write(i, i + take)
      ex.left -= take
      if (ex.left === 0) {
        if (i + take < n) this.reusable = false
        this.complete(ex)
      }
    } else if (ex.framing.kind === 'chunked') {
      const stop = ex.chunked!.feed(buf, i, n, write)
      if (stop === -1) return this.fail(ex)
      if (ex.chunked!.done) {
        if (stop < n) this.reusable = false
        this.complete(ex)
      }
    } else {
      write(i, n)
    }
    return this.readOn()
  }

  /** Whether reading may go on now: not while a write still holds the buffer. */
  private readOn(): boolean {
    if (this.socket.destroyed) return false
    if (this.holding > 0) this.paused = true
    return !this.paused
  }

  private write(res: ServerResponse, buf: Uint8Array, from: number, to: number): void {
    if (to <= from) return
    const piece = buf.subarray(from, to)
    // A response not yet on its socket keeps what it is given: give it a copy.
    if (!res.socket) {
      res.write(Buffer.from(piece))
      return
    }
    this.holding++
    res.write(piece, () => {
      if (--this.holding === 0 && this.paused) this.readMore()
    })
  }

  /** Reading paused for the buffer's writes, which are done: the kernel carries the rest, or reading goes on. */
  private readMore(): void {
    if (this.socket.destroyed) return
    const ex = this.exchange
    if (ex?.framing?.kind === 'length' && ex.left >= CARRY_MIN && this.carryBody(ex)) return
    this.paused = false
    this.socket.resume()
  }

  /** Hands the rest of the body to the kernel; false (nothing changed) when it cannot be. */
  private carryBody(ex: Exchange): boolean {
    const client = ex.res.socket
    if (!this.carry || !client) return false
    const carrying = this.carry.send(this.socket, client, ex.left, IDLE_TIMEOUT_MS, (end) => {
      this.carrying = undefined
      if (this.exchange !== ex || this.socket.destroyed) return
      ex.left -= end.carried
      // A stalled or broken body, or bytes past it: the link is out of step with its server.
      if (end.errno !== 0) return void this.fail(ex)
      if (end.extra > 0) this.reusable = false
      this.socket.setTimeout(IDLE_TIMEOUT_MS)
      this.complete(ex)
      this.paused = false
      this.socket.resume()
    })
    if (!carrying) return false
    this.carrying = carrying
    // Node sees no traffic on the link meanwhile; the carry has its own idle limit.
    this.socket.setTimeout(0)
    return true
  }
}

/**
 * The egress proxy's HTTP forwarding: each client connection's judged
 * requests go, one at a time and in order, over a connection of the proxy's
 * own to the judged address, kept while the next request is judged to the
 * same address. Response bodies move without an allocation per read (see
 * UpstreamLink); the requests themselves were parsed by Node's HTTP server.
 */
export class HttpForwarder {
  private readonly links = new Map<Socket, UpstreamLink>()
  private readonly queues = new Map<Socket, Promise<void>>()

  constructor(private readonly carry?: NativeCarry) {}

  /** Forwards `req` to `address:port`, after the connection's earlier requests. */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    address: string,
    port: number,
    unreachable: (err: Error) => ProxyError,
  ): Promise<void> {
    const client = req.socket
    if (!this.queues.has(client)) {
      client.once('close', () => {
        this.links.get(client)?.destroy()
        this.links.delete(client)
        this.queues.delete(client)
      })
    }
    const turn = (this.queues.get(client) ?? Promise.resolve()).then(() =>
      this.exchange(req, res, address, port, unreachable),
    )
    this.queues.set(
      client,
      turn.catch(() => {}),
    )
    return turn
  }

  /** Ends every link (the proxy is closing). */
  close(): void {
    for (const link of this.links.values()) link.destroy()
    this.links.clear()
  }

  private async exchange(
    req: IncomingMessage,
    res: ServerResponse,
    address: string,
    port: number,
    unreachable: (err: Error) => ProxyError,
  ): Promise<void> {
    const client = req.socket
    if (res.destroyed || client.destroyed) return
    const hasBody =
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
    // A kept link whose server has just closed it fails before any answer:
    // a request without a body is then sent once more, on a new link.
    for (let attempt = 0; ; attempt++) {
      let link = this.links.get(client)
      const reused = !!link && link.idle && link.address === address
      if (!reused) {
        link?.destroy()
        link = new UpstreamLink(address, port, this.carry)
        this.links.set(client, link)
        try {
          await link.connected()
        } catch (err) {
          this.links.delete(client)
          req.resume()
          sendProxyError(req, res, unreachable(err as Error))
          return
        }
        if (res.destroyed || client.destroyed) return link.destroy()
      }
      const failure = await this.send(link!, req, res, hasBody)
      if (!failure) return
      link!.destroy()
      if (this.links.get(client) === link) this.links.delete(client)
      if (failure === 'unreachable' && reused && !hasBody && attempt === 0) continue
      if (!res.headersSent) {
        req.resume()
        const why = failure === 'unreachable' ? 'closed the connection' : 'answered unreadably'
        sendProxyError(req, res, unreachable(new Error(`the server ${why}`)))
      } else {
        res.destroy()
      }
      return
    }
  }

  /** One request over `link`; resolves when its response is over, with why when it failed. */
  private send(
    link: UpstreamLink,
    req: IncomingMessage,
    res: ServerResponse,
    hasBody: boolean,
  ): Promise<'unreachable' | 'broken' | undefined> {
    return new Promise((resolve) => {
      let settled = false
      const method = req.method ?? 'GET'
      link.begin({
        method,
        res,
        head: '',
        left: 0,
        answered: false,
        closing: false,
        settle: (failure) => {
          if (settled) return
          settled = true
          // An answer before the whole request body: the rest of it is not
          // sent, so neither connection can carry another request.
          if (hasBody && !req.complete) {
            link.reusable = false
            res.shouldKeepAlive = false
          }
          resolve(failure)
        },
      })
      const chunked = req.headers['transfer-encoding'] !== undefined
      // Exactly the Host that was judged: Node keeps the first of repeated
      // Host headers, and a server that read a later one would be reached
      // for a name nobody judged. The body's framing is set here too, never
      // passed on: a client naming Content-Length in Connection would
      // otherwise send a body that the server reads as further requests.
      let head = `${method} ${req.url} HTTP/1.1\r\nHost: ${req.headers.host ?? ''}\r\n`
      for (const [k, v] of endToEnd(pairs(req.rawHeaders))) {
        const name = k.toLowerCase()
        if (name !== 'host' && name !== 'content-length') head += `${k}: ${v}\r\n`
      }
      if (chunked) head += 'transfer-encoding: chunked\r\n'
      else if (hasBody) head += `content-length: ${req.headers['content-length']}\r\n`
      link.socket.write(`${head}connection: keep-alive\r\n\r\n`)
      if (!hasBody) return
      const up = link.socket
      const onData = (d: Buffer) => {
        if (!d.length) return
        const ok = chunked
          ? up.write(`${d.length.toString(16)}\r\n`) && up.write(d) && up.write('\r\n')
          : up.write(d)
        if (!ok) {
          req.pause()
          up.once('drain', () => req.resume())
        }
      }
      req.on('data', onData)
      req.once('end', () => {
        req.off('data', onData)
        if (chunked && !up.destroyed) up.write('0\r\n\r\n')
      })
    })
  }
}
