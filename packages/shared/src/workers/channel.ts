import { type ErrorCode, WarrenError } from '../errors.js'
import { ConnectWindowError } from '../proxy/connect-window.js'
import { currentRequestId, withRequestId } from '../request-id.js'

/** One message between a worker process and its primary (structured-clone serialisation). */
export type Message =
  | { t: 'call'; id: number; method: string; args: unknown[]; requestId?: string }
  | { t: 'reply'; id: number; value?: unknown; error?: WireError }
  | { t: 'note'; method: string; args: unknown[] }

/** An error as it crosses: enough to throw the same kind again on the other side. */
interface WireError {
  message: string
  code?: string
  window?: ConnectWindowError['reason']
}

type Handler = (...args: never[]) => unknown

/**
 * Calls and notes over a process's IPC channel, both ways: a worker asks its
 * primary (a resume, a route, a node's verdict, a place in a connect
 * window), the primary asks a worker (its metrics). A call whose other end
 * goes away fails at once.
 */
export class Channel {
  private next = 0
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >()
  private readonly handlers = new Map<string, Handler>()
  private closed = false

  constructor(private readonly send: (m: Message) => boolean | undefined) {}

  handle(method: string, fn: Handler): this {
    this.handlers.set(method, fn)
    return this
  }

  call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new WarrenError('unavailable', 'the primary is gone'))
    const id = ++this.next
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      // The request this call serves keeps its id on the other side (its logs, its RPCs).
      const requestId = currentRequestId()
      this.post({ t: 'call', id, method, args, ...(requestId ? { requestId } : {}) })
    })
  }

  /** A one-way message (no answer, no error back). */
  note(method: string, ...args: unknown[]): void {
    if (!this.closed) this.post({ t: 'note', method, args })
  }

  /** Feeds a message that arrived; false when it is not one of this channel's. */
  receive(m: unknown): boolean {
    if (!isMessage(m)) return false
    if (m.t === 'reply') {
      const p = this.pending.get(m.id)
      if (!p) return true
      this.pending.delete(m.id)
      if (m.error) p.reject(fromWire(m.error))
      else p.resolve(m.value)
      return true
    }
    const fn = this.handlers.get(m.method)
    if (m.t === 'note') {
      // A note's failure has no one to tell; the handler logs what matters.
      if (fn) void Promise.resolve().then(() => (fn as (...a: unknown[]) => unknown)(...m.args))
      return true
    }
    const id = m.id
    if (!fn) {
      this.post({ t: 'reply', id, error: { message: `no such call: ${m.method}` } })
      return true
    }
    const run = () => (fn as (...a: unknown[]) => unknown)(...m.args)
    Promise.resolve()
      .then(() => (m.requestId ? withRequestId(m.requestId, run) : run()))
      .then(
        (value) => this.post({ t: 'reply', id, value }),
        (err: unknown) => this.post({ t: 'reply', id, error: toWire(err) }),
      )
    return true
  }

  /** The other end is gone: calls in flight and later ones fail. */
  close(): void {
    this.closed = true
    const err = new WarrenError('unavailable', 'the other end of the worker channel is gone')
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }

  private post(m: Message): void {
    if (this.closed) return
    try {
      this.send(m)
    } catch {
      // The channel closed under us; its 'disconnect' closes this.
    }
  }
}

function isMessage(m: unknown): m is Message {
  if (typeof m !== 'object' || m === null) return false
  const t = (m as { t?: unknown }).t
  return t === 'call' || t === 'reply' || t === 'note'
}

function toWire(err: unknown): WireError {
  if (err instanceof ConnectWindowError) return { message: err.message, window: err.reason }
  if (err instanceof WarrenError) return { message: err.message, code: err.code }
  return { message: err instanceof Error ? err.message : String(err) }
}

function fromWire(e: WireError): Error {
  if (e.window) return new ConnectWindowError(e.window, e.message)
  return new WarrenError((e.code ?? 'internal') as ErrorCode, e.message)
}
