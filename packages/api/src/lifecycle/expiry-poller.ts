import type { Logger } from '@warren/shared'
import pLimit from 'p-limit'
import { claimDue } from '../store/claims.js'
import type { Db } from '../store/db.js'
import { extendLease, type Sandbox } from '../store/sandboxes.js'
import type { Clock } from './clock.js'
import type { Expiries, ReplicaIdentity } from './core.js'

export interface ExpiryPollerOptions {
  db: Db
  clock: Clock
  log: Logger
  replica: ReplicaIdentity
  /** Node calls (kill, pause) of claimed expiries running at once. */
  concurrency: number
  /** How often the store is asked for due rows. */
  pollMs: number
  /** Called for each claimed row, already `killing` or `pausing` and owned by this replica. */
  onClaimed: (s: Sandbox) => Promise<void>
  /** Called with how late (ms after its endAt) each expiry was claimed. */
  onLateness?: (ms: number) => void
}

/** Claimed expiries whose node call has not finished, at most, per replica. */
const BACKLOG_PER_SLOT = 8
/** Claims in a row before the poller waits for its next tick. */
const MAX_ROUNDS = 8

/**
 * Expiry with several replicas (PostgreSQL): every replica polls the store a
 * few times a second for running rows whose `end_at` passed and claims a
 * batch with `FOR UPDATE SKIP LOCKED`, moving them to `killing`/`pausing` in
 * the same transaction (store/claims.ts) — so each expiry fires on exactly
 * one replica, at most one poll interval after its endAt, and no replica
 * scans the table (an index range over (state, end_at)). "Now" is the
 * lifecycle clock, which outside tests is the store's own time.
 *
 * Who owns what: a claimed row is this replica's until its node call
 * finishes; if the replica dies first, the row stays `killing`/`pausing`
 * with this replica as owner, and another replica's takeover loop settles it
 * (takeover.ts). A replica takes no more than its backlog allows, so others
 * share a storm.
 */
export class ExpiryPoller implements Expiries {
  private readonly limit: ReturnType<typeof pLimit>
  private readonly inflight = new Set<Promise<void>>()
  private polling: Promise<void> | undefined
  private cancelTimer: (() => void) | undefined
  private stopped = true
  /** Claimed expiries not yet started are dropped, as a crash would drop them (tests). */
  private halted = false

  constructor(private readonly o: ExpiryPollerOptions) {
    this.limit = pLimit(o.concurrency)
  }

  // The store holds every deadline: nothing to keep in memory.
  schedule(): void {}
  cancel(): void {}

  /** The lease is pushed to `at` (never shortened), so the next claim waits until then. */
  async retry(s: Sandbox, at: number): Promise<void> {
    if (s.endAt < at) await extendLease(this.o.db, s.sandboxId, at)
  }

  start(): void {
    this.stopped = false
    this.arm()
  }

  /** Stops at once: no more claims, and claimed expiries not yet started never start. */
  halt(): void {
    this.halted = true
    this.stopped = true
    this.cancelTimer?.()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.cancelTimer?.()
    await this.polling
    await this.idle()
  }

  async idle(): Promise<void> {
    await this.polling
    while (this.inflight.size) await Promise.allSettled([...this.inflight])
  }

  /** One poll now (tests drive it through the clock, or call this). */
  pollNow(): Promise<void> {
    this.polling ??= this.poll().finally(() => {
      this.polling = undefined
    })
    return this.polling
  }

  private arm(): void {
    if (this.stopped) return
    this.cancelTimer = this.o.clock.timer(() => {
      void this.pollNow().finally(() => this.arm())
    }, this.o.pollMs)
  }

  private async poll(): Promise<void> {
    const { db, clock, log, replica } = this.o
    // The clock is read once the turn that fired the timer is over: a manual
    // clock in tests moves all the way first, as real time would have.
    await Promise.resolve()
    const backlog = this.o.concurrency * BACKLOG_PER_SLOT
    for (let round = 0; round < MAX_ROUNDS && !this.stopped; round++) {
      const room = backlog - this.inflight.size
      if (room <= 0) return
      let claimed: Sandbox[]
      const now = clock.now()
      try {
        claimed = await claimDue(db, replica.id, now, room)
      } catch (err) {
        log.warn({ err }, 'expiry poll failed')
        return
      }
      for (const s of claimed) {
        this.o.onLateness?.(now - s.endAt)
        const p = this.limit(async () => {
          if (!this.halted) await this.o.onClaimed(s)
        }).catch((err) => log.error({ err, sandboxId: s.sandboxId }, 'expiry failed'))
        this.inflight.add(p)
        void p.finally(() => this.inflight.delete(p))
      }
      if (claimed.length < room) return
    }
  }
}
