import type { HandlerContext } from '@connectrpc/connect'

/**
 * A server-streaming handler whose generator is returned (its `finally`
 * blocks run) as soon as the client is gone. connect-node waits on each
 * write for its callback, 'drain' or 'error'; a write made after the socket
 * was destroyed but before the response's 'close' gets none of them (Node's
 * OutgoingMessage._writeRaw drops it), so connect would never return the
 * generator: a process stream would stay attached with the output paused at
 * its high-water mark, a watch would keep its watcher.
 */
export function endOnAbort<Req, Res>(
  handler: (req: Req, ctx: HandlerContext) => AsyncGenerator<Res>,
): (req: Req, ctx: HandlerContext) => AsyncGenerator<Res> {
  return (req, ctx) => {
    const it = handler(req, ctx)
    const end = () => void it.return(undefined).catch(() => {})
    if (ctx.signal.aborted) end()
    else ctx.signal.addEventListener('abort', end, { once: true })
    return it
  }
}
