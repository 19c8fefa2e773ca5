/**
 * The E2B lease rules as pure functions (times in ms, durations in s). The
 * per-team maximum lifetime, counted from the sandbox's (re)start, caps every
 * deadline.
 */
export interface LeaseLimits {
  startedAt: number
  maxLifetimeS: number
}

export const MAX_REFRESH_S = 3600
export const DEFAULT_REFRESH_S = 15

export function capEnd(end: number, limits: LeaseLimits): number {
  return Math.min(end, limits.startedAt + limits.maxLifetimeS * 1000)
}

/** `endAt = now + timeout`, which may shorten the lease; 0 expires it now. */
export function endAfter(now: number, timeoutS: number, limits: LeaseLimits): number {
  return capEnd(now + timeoutS * 1000, limits)
}

/** An extension never shortens the lease. */
export function extendedEnd(
  current: number,
  now: number,
  durationS: number,
  limits: LeaseLimits,
): number {
  return Math.max(current, capEnd(now + durationS * 1000, limits))
}
