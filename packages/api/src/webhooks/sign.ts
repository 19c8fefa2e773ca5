import { createHmac } from 'node:crypto'

/** The header a delivery's signature travels in. */
export const SIGNATURE_HEADER = 'warren-signature'

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the
 * webhook's secret>`. The timestamp is signed with the body, so a receiver
 * that refuses old timestamps refuses replays of captured deliveries.
 */
export function signatureHeader(secret: string, body: string, unixS: number): string {
  const mac = createHmac('sha256', secret).update(`${unixS}.${body}`).digest('hex')
  return `t=${unixS},v1=${mac}`
}
