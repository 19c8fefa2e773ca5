import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Interceptor } from '@connectrpc/connect'
import type { Logger } from 'pino'

/**
 * One request id follows a request from the edge through the API to the
 * node: taken from `x-request-id` when the caller sent a valid one, else
 * made where the request enters (edge or API), passed on in the same header
 * on every hop (HTTP and RPC), and printed in every log line written while
 * the request is handled (log.ts reads it from the async context).
 */
export const REQUEST_ID_HEADER = 'x-request-id'

const context = new AsyncLocalStorage<{ requestId: string }>()

/**
 * A caller's id is kept only when it is short and plain (letters, digits and
 * `._:-`, up to 128): it is written into logs and headers, so nothing that
 * could forge a log field or split a header gets through.
 */
export function validRequestId(v: string | null | undefined): string | undefined {
  return v && /^[A-Za-z0-9._:-]{1,128}$/.test(v) ? v : undefined
}

/** The caller's valid id, or a new one. */
export function requestIdFrom(v: string | string[] | null | undefined): string {
  return validRequestId(Array.isArray(v) ? v[0] : v) ?? randomUUID()
}

/** The id of the request being handled here, if any. */
export function currentRequestId(): string | undefined {
  return context.getStore()?.requestId
}

/** Runs `fn` as part of the request `requestId`. */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return context.run({ requestId }, fn)
}

/** Server side of an RPC: the caller's request id becomes this handler's. */
export function requestIdInterceptor(): Interceptor {
  return (next) => (req) => {
    const id = validRequestId(req.header.get(REQUEST_ID_HEADER))
    return id ? withRequestId(id, () => next(req)) : next(req)
  }
}

/**
 * Logs each RPC a server handles (with the caller's request id, through the
 * async context), except `quiet` ones (polls that run every few seconds).
 */
export function rpcLogInterceptor(
  log: Logger,
  quiet: ReadonlySet<string> = new Set(),
): Interceptor {
  return (next) => async (req) => {
    const rpc = req.method.localName
    if (quiet.has(rpc)) return next(req)
    const started = Date.now()
    const sandboxId = (req.message as { sandboxId?: unknown } | undefined)?.sandboxId
    const fields = { rpc, ...(typeof sandboxId === 'string' && sandboxId ? { sandboxId } : {}) }
    try {
      const res = await next(req)
      log.info({ ...fields, ms: Date.now() - started }, 'rpc')
      return res
    } catch (err) {
      log.warn({ ...fields, ms: Date.now() - started, err: String(err) }, 'rpc failed')
      throw err
    }
  }
}

/**
 * An HTTP request entering a proxy: its id (the caller's if valid, else a
 * new one) is written into its headers, so the next hop (node proxy,
 * sandbox) receives it, and `fn` handles the request as part of it. With a
 * logger, one debug line per exchange says how it ended.
 */
export function handleWithRequestId(
  req: IncomingMessage,
  res: ServerResponse | undefined,
  log: Logger | undefined,
  fn: () => void,
): void {
  const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER])
  req.headers[REQUEST_ID_HEADER] = requestId
  withRequestId(requestId, () => {
    if (res && log?.isLevelEnabled('debug')) {
      const started = Date.now()
      // Bound here: an emitter runs its listeners in the emitter's context, not this one.
      res.on(
        'finish',
        AsyncResource.bind(() =>
          log.debug(
            { method: req.method, status: res.statusCode, ms: Date.now() - started },
            'proxied',
          ),
        ),
      )
    }
    fn()
  })
}
