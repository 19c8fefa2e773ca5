import type { EventEmitter } from 'node:events'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { type Duplex, PassThrough, Transform } from 'node:stream'
import type { Dispatcher } from 'undici'
import { adoptOnread } from './accepted-reads.js'
import { type BulkReads, bulkReads } from './bulk-reads.js'
import type { ConnectSlot, ConnectWindowHandle } from './connect-window.js'
import { type DialRetry, dialOnce, dialWithRetry, startTls, type TlsVerify } from './dial.js'
import { type ProxyError, sendProxyError, sendProxyErrorOnSocket } from './errors.js'
import { UpstreamPools } from './pools.js'
import type { PinTerms } from './relay/native-pins.js'
import { dialThroughWindow } from './window-dial.js'

/** Where one request goes, and how its headers change on the way. */
export interface ForwardTarget {
  host: string
  port: number
  /** Set (replacing) these request headers. */
  setHeaders?: Record<string, string>
  /** Drop these request headers (lower case). */
  removeHeaders?: readonly string[]
  /** Retry a refused connect briefly (a server in a sandbox may be starting). */
  dialRetry?: DialRetry
  /**
   * Speak TLS to the target: `true` without verifying its certificate (a
   * sandbox's own HTTPS server, E2B's `httpsPorts`, usually self-signed); a
   * `TlsVerify` checking it (another Warren component's, e.g. a node proxy).
   */
  tls?: boolean | TlsVerify
  /**
   * New connections go through this window (a sandbox's port: see
   * ConnectWindow), so a burst does not overflow the server's accept queue.
   */
  connectWindow?: ConnectWindowHandle
  /**
   * Called for every chunk moved, with whether it came from the client. On an
   * upgraded connection the chunks are raw bytes (WebSocket frames included).
   */
  onTraffic?: (bytes: number, chunk: Buffer, fromClient: boolean) => void
  /** The error when the target cannot be reached. */
  unreachable: (err: Error) => ProxyError
  /** Ends the request early if its target stops serving before the answer begins. */
  cancel?: AnswerCancel
  /** The client's connection may be pinned to this target after the request (see NativePins). */
  pin?: PinTerms
}

/**
 * A request's way out while its answer has not begun: once `reason` holds
 * the ProxyError to answer, `signal` emits 'abort' and `onAbort` is called;
 * `settled` is called once the answer began or the request ended (neither
 * matters then). An emitter, not an AbortSignal: undici takes either, and an
 * AbortSignal per request cost ~35 µs of CPU. The relay, which needs no
 * emitter, sets `onAbort` instead.
 */
export interface AnswerCancel {
  readonly signal: EventEmitter
  readonly reason: ProxyError | undefined
  onAbort: (() => void) | undefined
  settled(): void
}

export type Resolution = { target: ForwardTarget } | { error: ProxyError }

/** Headers of one hop only (RFC 9110 §7.6.1), plus those the Connection header names. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** The header names a Connection header lists (hop-by-hop too), lower case. */
export function connectionNames(connection: string | string[]): Set<string> {
  return new Set(
    String(connection)
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  )
}

/** Whether a header is of one hop only; `named`, what the request's Connection header lists. */
export function isHopByHop(name: string, named: ReadonlySet<string> | undefined): boolean {
  return HOP_BY_HOP.has(name) || named?.has(name) === true
}

export function forwardHeaders(
  headers: IncomingHttpHeaders,
  keepUpgrade: boolean,
  remove: readonly string[] = [],
): Record<string, string | string[]> {
  // Without a Connection header (the HTTP/1.1 default) there is nothing to collect.
  const named = keepUpgrade || !headers.connection ? undefined : connectionNames(headers.connection)
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue
    if (!keepUpgrade && isHopByHop(k, named)) continue
    if (remove.includes(k)) continue
    out[k] = v
  }
  return out
}

/**
 * The one forwarding engine of both proxies: streams HTTP bodies both ways
 * over pooled keep-alive connections (undici) and splices upgraded
 * (WebSocket) connections. What differs between the edge and node proxies is
 * only `resolve`.
 */
export function createForwarder(
  resolveTarget: (req: IncomingMessage) => Resolution | Promise<Resolution>,
  opts: { notAPath?: ProxyError } = {},
) {
  const pools = new UpstreamPools()
  // Only origin-form targets (`/path`) name something in a sandbox. An
  // absolute-form `http://x/init` would otherwise slip past the path checks
  // (envd's /init) and reach a server that reads it as its own path.
  const refused = opts.notAPath ?? { status: 404, message: 'not found' }
  const resolve = (req: IncomingMessage): Resolution | Promise<Resolution> =>
    req.url?.startsWith('/') ? resolveTarget(req) : { error: refused }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let resolution: Resolution
    try {
      resolution = await resolve(req)
    } catch {
      sendProxyError(req, res, { status: 500, message: 'proxy error' })
      return
    }
    if ('error' in resolution) {
      req.resume()
      sendProxyError(req, res, resolution.error)
      return
    }
    const t = resolution.target
    const count = t.onTraffic
    const hasBody =
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
    // Counted on its way through a transform: a 'data' listener on the request
    // itself would start it flowing before undici reads it, and lose the body.
    const body = hasBody && count ? countChunks(req, count) : hasBody ? req : null
    pools.get(t.host, t.port, t.dialRetry, t.tls, t.connectWindow).stream(
      {
        path: req.url ?? '/',
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        headers: { ...forwardHeaders(req.headers, false, t.removeHeaders), ...t.setHeaders },
        body,
        ...(t.cancel ? { signal: t.cancel.signal } : {}),
      },
      ({ statusCode, headers }) => {
        t.cancel?.settled()
        // An answer before the request's body has all arrived (an upload
        // refused halfway) ends the client's connection: undici drops the
        // upstream one then, and with it the rest of the body, so a client
        // that sent another request on this connection would meet a reset.
        if (hasBody && !req.complete) res.shouldKeepAlive = false
        res.writeHead(statusCode, forwardHeaders(headers, false))
        if (!count) return res
        const counter = new PassThrough()
        counter.on('data', (b: Buffer) => count(b.length, b, false))
        counter.pipe(res)
        // A client gone mid-answer unpipes the counter but does not end it:
        // undici would keep the upstream stream open, paused, forever.
        res.on('close', () => {
          if (!res.writableFinished) counter.destroy()
        })
        return counter
      },
      (err) => {
        t.cancel?.settled()
        if (!err) return
        if (!res.headersSent) sendProxyError(req, res, t.cancel?.reason ?? t.unreachable(err))
        else res.destroy()
      },
    )
    res.on('close', () => {
      if (!res.writableFinished) req.destroy()
    })
  }

  async function close(): Promise<void> {
    await pools.close()
  }

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy())
    let resolution: Resolution
    try {
      resolution = await resolve(req)
    } catch {
      sendProxyErrorOnSocket(socket, { status: 500, message: 'proxy error' })
      return
    }
    if ('error' in resolution) {
      sendProxyErrorOnSocket(socket, resolution.error)
      return
    }
    const t = resolution.target
    // An upgraded connection is not ended early (see AnswerCancel).
    t.cancel?.settled()
    let upstream: Duplex
    let slot: ConnectSlot | undefined
    // Large reads on a plain upstream (a TLS one reads its socket itself).
    const reads = t.tls ? undefined : bulkReads()
    try {
      let tcp: Socket
      if (t.connectWindow) {
        ;({ socket: tcp, slot } = await dialThroughWindow(
          t.host,
          t.port,
          t.connectWindow,
          t.dialRetry,
          reads?.onread,
        ))
      } else {
        tcp = t.dialRetry
          ? await dialWithRetry(t.host, t.port, t.dialRetry, reads?.onread)
          : await dialOnce(t.host, t.port, undefined, reads?.onread)
      }
      upstream = t.tls ? await startTls(tcp, undefined, t.tls === true ? undefined : t.tls) : tcp
    } catch (err) {
      slot?.free()
      sendProxyErrorOnSocket(socket, t.unreachable(err as Error))
      return
    }
    // An upgraded connection is long-lived: its place in the window ends with
    // the server's first answer (the 101), or after the hold time.
    const onTraffic = slot ? releasingOnAnswer(slot, t, upstream) : t.onTraffic
    const headers = { ...forwardHeaders(req.headers, true, t.removeHeaders), ...t.setHeaders }
    let headText = `${req.method} ${req.url} HTTP/1.1\r\n`
    for (const [k, v] of Object.entries(headers)) {
      for (const value of Array.isArray(v) ? v : [v]) headText += `${k}: ${value}\r\n`
    }
    upstream.write(`${headText}\r\n`)
    if (head.length) {
      upstream.write(head)
      t.onTraffic?.(head.length, head, true)
    }
    splice(socket, upstream, onTraffic, reads)
  }

  return { onRequest, onUpgrade, close }
}

/** `t.onTraffic`, ending `slot` on the first bytes from upstream or after the hold (answered), or on close. */
function releasingOnAnswer(slot: ConnectSlot, t: ForwardTarget, upstream: Duplex) {
  let held = true
  const end = (answered: boolean) => {
    if (!held) return
    held = false
    clearTimeout(timer)
    if (answered) slot.answered()
    else slot.free()
  }
  const timer = setTimeout(() => end(true), t.connectWindow?.opts.holdMs ?? 0)
  timer.unref()
  upstream.once('close', () => end(false))
  return (bytes: number, chunk: Buffer, fromClient: boolean) => {
    if (!fromClient) end(true)
    t.onTraffic?.(bytes, chunk, fromClient)
  }
}

/** The request body through a transform that reports each chunk as client traffic. */
function countChunks(
  req: IncomingMessage,
  count: (bytes: number, chunk: Buffer, fromClient: boolean) => void,
): Transform {
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      count(chunk.length, chunk, true)
      done(null, chunk)
    },
  })
  req.on('error', (err) => counted.destroy(err))
  return req.pipe(counted)
}

/** How long a client gets to take what a finished upstream sent before its connection is cut. */
const FLUSH_MS = 10_000

/**
 * Pipes two connections into each other; either side ending or failing ends
 * both. `onTraffic` sees every chunk and whether it came from `a`. With
 * `bReads` (`b` dialed with its `onread`), `b`'s bytes go to `a` in large
 * reads, and when `b` finishes cleanly `a` is ended rather than cut: what it
 * still has to write (up to a read and its socket's buffer) reaches its
 * peer first, within FLUSH_MS. `a`, when it is a plain TCP socket, is read
 * the same way (`adoptOnread`).
 */
export function splice(
  a: Duplex,
  b: Duplex,
  onTraffic?: (bytes: number, chunk: Buffer, fromA: boolean) => void,
  bReads?: BulkReads,
): void {
  let closed = false
  const close = () => {
    if (closed) return
    closed = true
    a.destroy()
    b.destroy()
  }
  a.on('error', close)
  b.on('error', close)
  a.on('close', close)
  const aReads = bulkReads()
  const earlier = adoptOnread(a as Socket, aReads.onread)
  if (earlier) {
    for (const chunk of earlier) {
      onTraffic?.(chunk.length, chunk, true)
      b.write(chunk)
    }
    relayReads(a, b, aReads, (chunk) => onTraffic?.(chunk.length, chunk, true))
    a.once('end', () => b.end())
  } else {
    if (onTraffic) a.on('data', (d: Buffer) => onTraffic(d.length, d, true))
    a.pipe(b)
  }
  if (!bReads) {
    if (onTraffic) b.on('data', (d: Buffer) => onTraffic(d.length, d, false))
    b.pipe(a)
    b.on('close', close)
    return
  }
  relayReads(b, a, bReads, (chunk) => onTraffic?.(chunk.length, chunk, false))
  let ended = false
  b.once('end', () => {
    ended = true
    a.end()
  })
  b.on('close', () => {
    if (!ended || a.writableFinished) return close()
    a.once('finish', close)
    setTimeout(close, FLUSH_MS).unref()
  })
}

/** `from`'s large reads written to `to`, `from` paused while `to` is full. */
function relayReads(
  from: Duplex,
  to: Duplex,
  reads: BulkReads,
  seen: (chunk: Buffer) => void,
): void {
  reads.start(from as Socket, (chunk, release) => {
    seen(chunk)
    return to.write(chunk, release)
  })
  to.on('drain', () => from.resume())
}
