import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'

/** A request header's (first) value. */
export function firstHeader(
  req: Pick<IncomingMessage, 'headers'>,
  name: string,
): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * The peer's address as it is written elsewhere: an IPv4 client of a
 * dual-stack listener is ::ffff:a.b.c.d, which rules and chains name a.b.c.d.
 */
export function peerAddress(socket: Socket): string {
  return (socket.remoteAddress ?? '').replace(/^::ffff:/, '')
}
