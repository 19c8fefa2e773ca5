import { randomUUID } from 'node:crypto'
import { readFileSync, readlinkSync } from 'node:fs'
import { hostname } from 'node:os'
import type { Logger } from '@warren/shared'
import type { Db } from '../store/db.js'
import { heartbeat, registerReplica, unregisterReplica } from '../store/replicas.js'
import type { Clock } from './clock.js'
import type { ReplicaIdentity } from './core.js'

/**
 * Where this process's pid means something: the host name, the kernel's boot
 * and the pid namespace. A replica registered with the same identity whose
 * pid is gone is dead for certain (takeover.ts need not wait for its
 * heartbeat to go stale: a restarted `warren api` takes over at once).
 */
export function hostIdentity(): string {
  const read = (f: () => string) => {
    try {
      return f().trim()
    } catch {
      return '?'
    }
  }
  const boot = read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'))
  const pidns = read(() => readlinkSync('/proc/self/ns/pid'))
  return `${hostname()}/${boot}/${pidns}`
}

/** Whether a process of this pid namespace is alive. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/** How far this host's clock may be from the store's before it is logged as wrong. */
const SKEW_WARN_MS = 500

/**
 * The system clock moved to the store's time: the offset is measured at
 * every heartbeat (the store's time at the round trip's midpoint), so every
 * replica computes leases and deadlines on the same timeline, whatever its
 * host's clock says. The error is at most half a round trip.
 */
export class StoreClock implements Clock {
  private offset = 0

  now(): number {
    return Date.now() + this.offset
  }

  timer(fn: () => void, ms: number): () => void {
    const t = setTimeout(fn, ms)
    return () => clearTimeout(t)
  }

  /** The store said `storeTime` between `sentAt` and `receivedAt` (host time). */
  observe(storeTime: number, sentAt: number, receivedAt: number): number {
    // Whole milliseconds: times are stored as integers.
    this.offset = Math.round(storeTime - (sentAt + receivedAt) / 2)
    return this.offset
  }
}

export interface ReplicaOptions {
  db: Db
  log: Logger
  /** Between two heartbeats. */
  heartbeatMs: number
  /** Told the store's time at each heartbeat. */
  storeClock?: StoreClock
}

/**
 * This API process as a member of the replica set (PostgreSQL): registered
 * under a fresh id, with a heartbeat every `heartbeatMs` in store time. If
 * its registration is gone at a heartbeat, the others took it for dead (it
 * stalled longer than the staleness bound) and took over what it owned; it
 * registers again under a new id so that none of its old claims can be
 * confused with new ones (their writes carry the old owner and lose).
 */
export class Replica implements ReplicaIdentity {
  private current = randomUUID()
  private timer: NodeJS.Timeout | undefined
  private beating: Promise<void> | undefined

  constructor(private readonly o: ReplicaOptions) {}

  get id(): string {
    return this.current
  }

  async start(): Promise<void> {
    await this.register()
    await this.beat()
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => {
        this.beating = undefined
      })
    }, this.o.heartbeatMs)
    this.timer.unref()
  }

  /** Heartbeats stop; the registration stays and goes stale (a crash, in tests). */
  halt(): void {
    clearInterval(this.timer)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.beating
    // A clean stop leaves nothing for others to take over but what is still
    // transitional; they settle that without waiting for the staleness bound.
    await unregisterReplica(this.o.db, this.current).catch(() => {})
  }

  private async register(): Promise<void> {
    await registerReplica(this.o.db, { id: this.current, host: hostIdentity(), pid: process.pid })
  }

  private async beat(): Promise<void> {
    const { db, log, storeClock } = this.o
    const sentAt = Date.now()
    try {
      const at = await heartbeat(db, this.current)
      if (at === undefined) {
        const old = this.current
        this.current = randomUUID()
        log.warn(
          { old, replica: this.current },
          'taken for dead by other replicas; registering again',
        )
        await this.register()
        return
      }
      const offset = storeClock?.observe(at, sentAt, Date.now()) ?? 0
      if (Math.abs(offset) > SKEW_WARN_MS)
        log.warn({ offsetMs: Math.round(offset) }, "this host's clock is off the store's")
    } catch (err) {
      log.warn({ err }, 'replica heartbeat failed')
    }
  }
}
