import { timingSafeEqual } from 'node:crypto'

/** E2B's header for a sandbox's ports when public traffic is off. */
export const TRAFFIC_TOKEN_HEADER = 'e2b-traffic-access-token'

/** Constant-time comparison that does not leak the expected length through an early exit. */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  const a = Buffer.from(presented ?? '')
  const b = Buffer.from(expected)
  const same = a.length === b.length
  return timingSafeEqual(same ? a : b, b) && same
}
