import { type Logger, WarrenError } from '@warren/shared'
import { PausedKind } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { Catalog } from '../catalog/catalog.js'
import type { Placement } from '../placement/nodes.js'
import type { Db } from '../store/db.js'
import { getSandbox, type Sandbox } from '../store/sandboxes.js'
import { getTeam, type Team } from '../store/teams.js'
import type { Clock } from './clock.js'
import type { LeaseLimits } from './lease.js'
import type { LifecycleMetrics } from './metrics.js'

/**
 * When sandboxes expire. With SQLite (one process) a deadline heap fed by
 * every change (scheduler.ts); with PostgreSQL each replica polls the store
 * for due rows and claims them (expiry-poller.ts), so `schedule` and
 * `cancel` have nothing to do there.
 */
export interface Expiries {
  /** The sandbox's lease now ends at `at`. */
  schedule(id: string, at: number): void
  cancel(id: string): void
  /** An expiry failed (node unreachable): it is tried again no sooner than `at`. */
  retry(s: Sandbox, at: number): Promise<void>
  /** Resolves once the expiries under way have finished. */
  idle(): Promise<void>
  stop(): Promise<void>
}

/**
 * This process's identity among API replicas: transitional rows it moves
 * carry it as their owner. It changes if the replica is taken for dead
 * (its registration removed) and registers again.
 */
export interface ReplicaIdentity {
  readonly id: string
}

/** What every part of the lifecycle engine shares. */
export interface LifecycleCore {
  db: Db
  placement: Placement
  catalog: Catalog
  log: Logger
  clock: Clock
  scheduler: Expiries
  metrics: LifecycleMetrics
  replica: ReplicaIdentity
  team(teamId: string): Promise<Team>
}

/** How soon a failed expiry or pause (unreachable node) is tried again. */
export const RETRY_MS = 5000

export const KIND: Record<PausedKind, 'memory' | 'files' | null> = {
  [PausedKind.UNSPECIFIED]: null,
  [PausedKind.MEMORY]: 'memory',
  [PausedKind.FILES]: 'files',
}

export function limits(s: Sandbox, team: Team): LeaseLimits {
  return { startedAt: s.startedAt, maxLifetimeS: team.maxLifetimeS }
}

/** A sandbox callers may see: not being created, not killed or being killed. */
export function isLive(s: Sandbox | undefined): s is Sandbox {
  return !!s && s.state !== 'killed' && s.state !== 'killing' && s.state !== 'creating'
}

/** The error for a compare-and-set that lost: 404 if the sandbox is gone, else 409. */
export async function lostRace(db: Db, sandboxId: string): Promise<WarrenError> {
  const s = await getSandbox(db, sandboxId)
  if (!s || s.state === 'killed' || s.state === 'killing') {
    return new WarrenError('not_found', `sandbox ${sandboxId} not found`)
  }
  return new WarrenError(
    'conflict',
    `sandbox ${sandboxId} was changed by a concurrent request (now ${s.state}); retry`,
  )
}

/**
 * A team by id, read from the store each time: with several replicas a
 * per-process copy of anything that can change (limits) would disagree.
 */
export function teamReader(db: Db): (teamId: string) => Promise<Team> {
  return async (teamId) => {
    const team = await getTeam(db, teamId)
    if (!team) throw new WarrenError('internal', `team ${teamId} is missing`)
    return team
  }
}
