import type { HandlerContext } from '@connectrpc/connect'
import { keepaliveMs } from '../../util/event-queue.js'
import type { ProcessEventInit, ProcessHandle } from './process-handle.js'

/**
 * The event stream of one attached client: start{pid}, then data and
 * keepalives, then end. Leaving early (deadline, disconnect) detaches the
 * stream but never stops the process.
 */
export async function* streamEvents(
  handle: ProcessHandle,
  ctx: HandlerContext,
): AsyncGenerator<{ event: ProcessEventInit }> {
  const { queue, detach } = handle.attach()
  const ms = keepaliveMs(ctx.requestHeader.get('keepalive-ping-interval'))
  try {
    yield { event: { event: { case: 'start', value: { pid: handle.pid } } } }
    const keepalive = ms
      ? { ms, make: (): ProcessEventInit => ({ event: { case: 'keepalive', value: {} } }) }
      : undefined
    for await (const event of queue.drain(ctx.signal, keepalive)) yield { event }
  } finally {
    detach()
  }
}
