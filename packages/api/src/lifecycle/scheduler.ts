import type { Logger } from '@warren/shared'
import pLimit from 'p-limit'
import type { Sandbox } from '../store/sandboxes.js'
import type { Clock } from './clock.js'
import type { Expiries } from './core.js'
import { DeadlineQueue } from './deadline-queue.js'

/** Node's timers hold at most ~24.8 days. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Wakes at the next sandbox deadline — one timer for all of them, re-armed
 * when an earlier deadline arrives — and hands due sandboxes to `onDue` with
 * bounded concurrency. No periodic scans: deadlines come from the lifecycle's
 * own changes (and one query at start). For one process (SQLite): with
 * several replicas each would hold only its own changes, so PostgreSQL uses
 * expiry-poller.ts instead.
 */
export class ExpiryScheduler implements Expiries {
  private readonly queue = new DeadlineQueue()
  private cancelTimer: (() => void) | undefined
  private timerAt = Number.POSITIVE_INFINITY
  private readonly limit: ReturnType<typeof pLimit>
  private stopped = false
  private readonly inflight = new Set<Promise<void>>()
  private readonly log: Logger
  private readonly clock: Clock

  constructor(
    private readonly onDue: (id: string, at: number) => Promise<void>,
    opts: { concurrency: number; log: Logger; clock: Clock },
  ) {
    this.limit = pLimit(opts.concurrency)
    this.log = opts.log
    this.clock = opts.clock
  }

  schedule(id: string, at: number): void {
    this.queue.set(id, at)
    if (at < this.timerAt) this.arm()
  }

  cancel(id: string): void {
    this.queue.delete(id)
  }

  async retry(s: Sandbox, at: number): Promise<void> {
    this.schedule(s.sandboxId, at)
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.cancelTimer?.()
    await this.idle()
  }

  /** Resolves once the expiries already handed to `onDue` have finished. */
  async idle(): Promise<void> {
    await Promise.allSettled(this.inflight)
  }

  private arm(): void {
    if (this.stopped) return
    this.cancelTimer?.()
    const next = this.queue.peek()
    if (next === undefined) {
      this.timerAt = Number.POSITIVE_INFINITY
      return
    }
    this.timerAt = next
    this.cancelTimer = this.clock.timer(
      () => this.fire(),
      Math.min(Math.max(0, next - this.clock.now()), MAX_TIMER_MS),
    )
  }

  private fire(): void {
    this.timerAt = Number.POSITIVE_INFINITY
    for (const { id, at } of this.queue.takeDue(this.clock.now())) {
      const p = this.limit(() => this.onDue(id, at)).catch((err) =>
        this.log.error({ err, sandboxId: id }, 'expiry failed'),
      )
      this.inflight.add(p)
      void p.finally(() => this.inflight.delete(p))
    }
    this.arm()
  }
}
