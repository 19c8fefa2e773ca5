import type { Logger } from '@warren/shared'
import type { Db } from '../store/db.js'
import {
  lastPosition,
  onEventsAnnounced,
  type Position,
  teamsWithEventsAfter,
} from '../store/events.js'

/** A wake-up that is never lost: one raised while nobody waits is kept for the next wait. */
export class Signal {
  private raised = false
  private waiter: (() => void) | undefined

  raise(): void {
    this.raised = true
    this.waiter?.()
  }

  /** Resolves when raised (now, if it was meanwhile), after `ms`, or on abort. */
  wait(ms: number, abort?: AbortSignal): Promise<void> {
    if (this.raised || abort?.aborted) {
      this.raised = false
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        abort?.removeEventListener('abort', done)
        this.waiter = undefined
        this.raised = false
        resolve()
      }
      const timer = setTimeout(done, ms)
      abort?.addEventListener('abort', done)
      this.waiter = done
    })
  }
}

/**
 * This replica's follower of the event log (every replica has one): it
 * reads positions and team ids past its own position every `pollMs` (at
 * once when an event committed in this process) and raises the signal of
 * each subscriber of a team that has new events, and of every `any`
 * subscriber. Changes made through other replicas arrive within a poll.
 * Subscribers read the events themselves, from their own position.
 */
export class EventTail {
  private readonly byTeam = new Map<string, Set<Signal>>()
  private readonly any = new Set<Signal>()
  private position: Position | undefined
  private timer: NodeJS.Timeout | undefined
  private pass: Promise<void> | undefined
  private again = false
  private unsubscribe: (() => void) | undefined

  constructor(
    private readonly db: Db,
    private readonly pollMs: number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.position = await lastPosition(this.db)
    this.unsubscribe = onEventsAnnounced(this.db, () => this.poke())
    this.timer = setInterval(() => this.poke(), this.pollMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    this.unsubscribe?.()
    await this.pass
  }

  /** A signal raised when the team has new events; `leave` when done. */
  join(teamId: string | undefined): { signal: Signal; leave: () => void } {
    const signal = new Signal()
    const set =
      teamId === undefined
        ? this.any
        : (this.byTeam.get(teamId) ?? this.byTeam.set(teamId, new Set()).get(teamId)!)
    set.add(signal)
    return {
      signal,
      leave: () => {
        set.delete(signal)
        if (teamId !== undefined && !set.size) this.byTeam.delete(teamId)
      },
    }
  }

  /** Streams open on this replica (bounded by the route). */
  get subscribers(): number {
    let n = this.any.size
    for (const s of this.byTeam.values()) n += s.size
    return n
  }

  private poke(): void {
    if (this.pass) {
      this.again = true
      return
    }
    this.pass = this.read()
      .catch((err: unknown) => this.log.warn({ err }, 'event tail: reading the log failed'))
      .finally(() => {
        this.pass = undefined
        if (this.again) {
          this.again = false
          this.poke()
        }
      })
  }

  private async read(): Promise<void> {
    if (!this.position) return
    for (;;) {
      const { teams, last } = await teamsWithEventsAfter(this.db, this.position)
      this.position = last
      if (!teams.size) return
      for (const t of teams) for (const s of this.byTeam.get(t) ?? []) s.raise()
      for (const s of this.any) s.raise()
    }
  }
}
