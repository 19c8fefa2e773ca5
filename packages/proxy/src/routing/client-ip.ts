import type { IncomingMessage } from 'node:http'
import { peerAddress } from '@warren/shared'

/**
 * The client's address: the connection's peer, or — behind `trustedHops`
 * proxies of our own — the address that the outermost trusted proxy saw,
 * counted from the right of X-Forwarded-For (entries further left are
 * whatever the client claimed). Undefined when it cannot be told.
 */
export function clientIp(req: IncomingMessage, trustedHops: number): string | undefined {
  const peer = peerAddress(req.socket) || undefined
  if (trustedHops === 0) return peer
  const header = req.headers['x-forwarded-for']
  const chain = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  // chain[-1] was added by the nearest trusted proxy, ..., chain[-trustedHops] by the outermost.
  const ip = chain[chain.length - trustedHops]
  return ip?.replace(/^::ffff:/, '')
}
