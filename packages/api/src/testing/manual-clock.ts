import type { Clock } from '../lifecycle/clock.js'

/**
 * A clock that only moves when a test moves it. Timers fire inside
 * `advance()`, in deadline order, each with the clock set to its own
 * deadline — never on their own, so an expiry fires exactly when the test
 * says so. A timer armed for "now" (ms <= 0) waits for the next `advance`
 * (`advance(0)` fires it).
 */
export class ManualClock implements Clock {
  private t: number
  private seq = 0
  private readonly timers = new Map<number, { at: number; fn: () => void }>()

  constructor(start = Date.parse('2030-01-01T00:00:00Z')) {
    this.t = start
  }

  now(): number {
    return this.t
  }

  timer(fn: () => void, ms: number): () => void {
    const id = this.seq++
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn })
    return () => this.timers.delete(id)
  }

  /** Whether a timer is due at the current time and waits for `advance(0)`. */
  hasDue(): boolean {
    return [...this.timers.values()].some((t) => t.at <= this.t)
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    if (ms < 0) throw new Error('a clock does not go back')
    const end = this.t + ms
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined
      for (const entry of this.timers) {
        if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry
      }
      if (!next) break
      this.timers.delete(next[0])
      this.t = Math.max(this.t, next[1].at)
      next[1].fn()
    }
    this.t = end
  }

  /** Moves time forward to `at` (an absolute instant), firing what falls due. */
  advanceTo(at: number): void {
    this.advance(Math.max(0, at - this.t))
  }
}
