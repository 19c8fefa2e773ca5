/**
 * The time the lifecycle runs on: deadlines, leases, tombstones and the
 * expiry timer all read it, so a test can move time itself and make an
 * expiry fire at an exact instant instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  /** Runs `fn` once, `ms` from now on this clock; the returned function cancels it. */
  timer(fn: () => void, ms: number): () => void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  timer(fn, ms) {
    const t = setTimeout(fn, ms)
    return () => clearTimeout(t)
  },
}
