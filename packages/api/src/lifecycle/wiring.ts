import { randomUUID } from 'node:crypto'
import { isPostgres } from '../store/db.js'
import type { Sandbox } from '../store/sandboxes.js'
import { type Clock, systemClock } from './clock.js'
import type { Expiries, ReplicaIdentity } from './core.js'
import type { LifecycleDeps } from './engine.js'
import { ExpiryPoller } from './expiry-poller.js'
import { Replica, StoreClock } from './replica.js'
import { DEFAULT_REPLICATION, type ReplicationOptions } from './replication.js'
import { ExpiryScheduler } from './scheduler.js'

/**
 * What decides expiries and time, by store: SQLite (one process) has the
 * system clock, an in-process deadline heap and a random replica id;
 * PostgreSQL has the store's time (unless a test gives a clock), the replica
 * registry and the expiry poller.
 */
export function wireExpiry(
  deps: LifecycleDeps,
  on: {
    atDeadline: (id: string) => Promise<void>
    claimed: (s: Sandbox) => Promise<void>
    lateness: (ms: number) => void
  },
): {
  clock: Clock
  scheduler: Expiries
  identity: ReplicaIdentity
  replica: Replica | undefined
  poller: ExpiryPoller | undefined
  options: ReplicationOptions
} {
  const options = { ...DEFAULT_REPLICATION, ...deps.replication }
  if (!isPostgres(deps.db)) {
    const clock = deps.clock ?? systemClock
    const scheduler = new ExpiryScheduler(on.atDeadline, {
      concurrency: deps.maxConcurrentExpiries,
      log: deps.log,
      clock,
    })
    const identity = { id: randomUUID() }
    return { clock, scheduler, identity, replica: undefined, poller: undefined, options }
  }
  const storeClock = deps.clock ? undefined : new StoreClock()
  const clock = deps.clock ?? storeClock ?? systemClock
  const replica = new Replica({
    db: deps.db,
    log: deps.log,
    heartbeatMs: options.heartbeatMs,
    ...(storeClock ? { storeClock } : {}),
  })
  const poller = new ExpiryPoller({
    db: deps.db,
    clock,
    log: deps.log,
    replica,
    concurrency: deps.maxConcurrentExpiries,
    pollMs: options.pollMs,
    onClaimed: on.claimed,
    onLateness: on.lateness,
  })
  return { clock, scheduler: poller, identity: replica, replica, poller, options }
}
