import { WarrenError } from '@warren/shared'
import { sql } from 'kysely'
import { eventKindOf } from '../events/kinds.js'
import type { Db } from './db.js'
import { announceEvents, recordEvent } from './events.js'
import { lockTeam } from './locks.js'
import {
  ACTIVE_STATES,
  type Row,
  type Sandbox,
  type SandboxPatch,
  toColumns,
  toSandbox,
} from './sandbox-row.js'
import type { SandboxState } from './schema.js'
import { claimVolumes } from './volumes.js'

// Writes of sandbox records, each one atomic compare-and-set (or one
// transaction): the create under the team's limit, transitions, lease
// extensions and the tombstone purge. The record's model and the reads
// live beside this module and are re-exported here.
export * from './sandbox-reads.js'
export * from './sandbox-row.js'

export function teamLimitReached(maxConcurrent: number): WarrenError {
  return new WarrenError(
    'limit_exceeded',
    `team limit of ${maxConcurrent} concurrent sandboxes reached; kill or pause one first`,
  )
}

export function teamMemoryReached(maxMemoryMb: number, needsMb: number): WarrenError {
  return new WarrenError(
    'limit_exceeded',
    `team limit of ${maxMemoryMb} MB of sandbox memory reached (this sandbox needs ${needsMb} MB); kill or pause one first`,
  )
}

/** How many of a team's sandboxes hold a place in its limit. */
export async function countActive(db: Db, teamId: string): Promise<number> {
  const { n } = await db
    .selectFrom('sandboxes')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('team_id', '=', teamId)
    .where('state', 'in', ACTIVE_STATES)
    .executeTakeFirstOrThrow()
  return Number(n)
}

/** The memory (MB) a team's active sandboxes hold. */
async function activeMemoryMb(db: Db, teamId: string): Promise<number> {
  const { mb } = await db
    .selectFrom('sandboxes')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('memory_mb'), eb.lit(0)).as('mb'))
    .where('team_id', '=', teamId)
    .where('state', 'in', ACTIVE_STATES)
    .executeTakeFirstOrThrow()
  return Number(mb)
}

/**
 * Inserts a sandbox in state `creating` (owned by the creating replica) if
 * the team is under its limit of active sandboxes (and of their memory, when
 * it has one). The count and the insert
 * run in one transaction that holds the team's row (PostgreSQL; SQLite
 * serializes writers), so concurrent creates on any replicas cannot both
 * take the last place. The volumes it mounts are claimed in the same
 * transaction (see `claimVolumes`): none of them can be deleted from under it.
 */
export async function insertCreating(
  db: Db,
  s: Sandbox,
  limits: { maxConcurrent: number; maxMemoryMb: number | null },
): Promise<void> {
  const { maxConcurrent, maxMemoryMb } = limits
  await db.transaction().execute(async (tx) => {
    await lockTeam(tx, s.teamId)
    if ((await countActive(tx, s.teamId)) >= maxConcurrent) throw teamLimitReached(maxConcurrent)
    // Its memory is what the create reckons (the row holds it until the node
    // says), so concurrent creates count each other.
    if (maxMemoryMb !== null && (await activeMemoryMb(tx, s.teamId)) + s.memoryMb > maxMemoryMb)
      throw teamMemoryReached(maxMemoryMb, s.memoryMb)
    await tx
      .insertInto('sandboxes')
      .values({
        id: s.sandboxId,
        team_id: s.teamId,
        template_id: s.templateId,
        node_id: s.nodeId,
        state: 'creating',
        created_at: s.createdAt,
        started_at: s.startedAt,
        end_at: s.endAt,
        timeout_s: s.timeoutS,
        metadata: JSON.stringify(s.metadata),
        env_vars: JSON.stringify(s.envVars),
        envd_version: s.envdVersion,
        envd_access_token: s.envdAccessToken,
        traffic_access_token: s.trafficAccessToken,
        cpu_count: s.cpuCount,
        memory_mb: s.memoryMb,
        disk_size_mb: s.diskSizeMb,
        lifecycle: JSON.stringify(s.lifecycle),
        network: JSON.stringify(s.network),
        allow_internet_access:
          s.allowInternetAccess === null ? null : Number(s.allowInternetAccess),
        address: s.address,
        kill_reason: null,
        killed_at: null,
        paused_kind: null,
        paused_at: null,
        files_only: 0,
        resumed_from: null,
        owner: s.owner,
        volume_mounts: JSON.stringify(s.volumeMounts),
        cluster: s.cluster,
        isolation: s.isolation,
      })
      .execute()
    await claimVolumes(tx, s.teamId, s.sandboxId, s.volumeMounts)
  })
}

export interface TransitionGuard {
  from: SandboxState[]
  /** Only if nobody changed the sandbox since this version was read. */
  version?: number
  /** Only if the lease has run out by then (expiry must lose to an extension). */
  endAtAtMost?: number
  /**
   * Only if the team's other active sandboxes are fewer than `max` and, when
   * `maxMemoryMb` is set, hold at most `maxMemoryMb - memoryMb` (a resume
   * takes a place and its memory).
   */
  activeBelow?: { teamId: string; max: number; maxMemoryMb?: number | null; memoryMb?: number }
  /** Only if this replica still owns the transitional state (none took it over). */
  owner?: string
}

/**
 * One atomic compare-and-set: the update applies only if the sandbox is in
 * one of `from` (and matches the optional guards); returns the new state, or
 * undefined when the guard did not hold — the caller lost the race. A
 * settled change (see `eventKindOf`) records its lifecycle event in the same
 * transaction, at `at` (the lifecycle clock's now).
 */
export async function transition(
  db: Db,
  id: string,
  guard: TransitionGuard,
  patch: SandboxPatch,
  at: number = Date.now(),
): Promise<Sandbox | undefined> {
  const limit = guard.activeBelow
  const kind = eventKindOf(guard.from, patch)
  if (!limit && !kind) return compareAndSet(db, id, guard, patch)
  // The team's row is held while the place is counted and taken, as in a create.
  const s = await db.transaction().execute(async (tx) => {
    if (limit) await lockTeam(tx, limit.teamId)
    const changed = await compareAndSet(tx, id, guard, patch)
    if (changed && kind) await recordEvent(tx, changed, kind, at)
    return changed
  })
  if (s && kind) announceEvents(db)
  return s
}

async function compareAndSet(
  db: Db,
  id: string,
  guard: TransitionGuard,
  patch: SandboxPatch,
): Promise<Sandbox | undefined> {
  let q = db
    .updateTable('sandboxes')
    .set({ ...toColumns(patch), version: sql<number>`version + 1` })
    .where('id', '=', id)
    .where('state', 'in', guard.from)
  if (guard.version !== undefined) q = q.where('version', '=', guard.version)
  if (guard.endAtAtMost !== undefined) q = q.where('end_at', '<=', guard.endAtAtMost)
  if (guard.owner !== undefined) q = q.where('owner', '=', guard.owner)
  const limit = guard.activeBelow
  if (limit) {
    // Counted in the same statement as the update, under the team's lock, so
    // two racing resumes (or a resume and a create) cannot both take the
    // last place.
    q = q.where(
      (eb) =>
        eb
          .selectFrom('sandboxes as other')
          .select((o) => o.fn.countAll<number>().as('n'))
          .where('other.team_id', '=', limit.teamId)
          .where('other.state', 'in', ACTIVE_STATES)
          .where('other.id', '!=', id),
      '<',
      limit.max,
    )
    const maxMb = limit.maxMemoryMb
    if (maxMb !== null && maxMb !== undefined)
      q = q.where(
        (eb) =>
          eb
            .selectFrom('sandboxes as other')
            .select((o) => o.fn.coalesce(o.fn.sum<number>('other.memory_mb'), o.lit(0)).as('mb'))
            .where('other.team_id', '=', limit.teamId)
            .where('other.state', 'in', ACTIVE_STATES)
            .where('other.id', '!=', id),
        '<=',
        maxMb - (limit.memoryMb ?? 0),
      )
  }
  const row = await q.returningAll().executeTakeFirst()
  return row ? toSandbox(row as Row) : undefined
}

/**
 * Extends the lease without ever shortening it, in one statement. With
 * `event`, a lease it really moves records `timeout_changed` in the same
 * transaction (traffic keepalive does not: its extensions are many).
 */
export async function extendLease(
  db: Db,
  id: string,
  endAt: number,
  event?: { at: number },
): Promise<Sandbox | undefined> {
  if (!event) {
    const row = await db
      .updateTable('sandboxes')
      .set({
        end_at: sql<number>`case when end_at > ${endAt} then end_at else ${endAt} end`,
        version: sql<number>`version + 1`,
      })
      .where('id', '=', id)
      .where('state', '=', 'running')
      .returningAll()
      .executeTakeFirst()
    return row ? toSandbox(row as Row) : undefined
  }
  const { moved, s } = await db.transaction().execute(async (tx) => {
    const row = await tx
      .updateTable('sandboxes')
      .set({ end_at: endAt, version: sql<number>`version + 1` })
      .where('id', '=', id)
      .where('state', '=', 'running')
      .where('end_at', '<', endAt)
      .returningAll()
      .executeTakeFirst()
    if (row) {
      const extended = toSandbox(row as Row)
      await recordEvent(tx, extended, 'timeout_changed', event.at)
      return { moved: true, s: extended }
    }
    // Already as long: unchanged, if still running.
    const same = await tx
      .selectFrom('sandboxes')
      .selectAll()
      .where('id', '=', id)
      .where('state', '=', 'running')
      .executeTakeFirst()
    return { moved: false, s: same ? toSandbox(same as Row) : undefined }
  })
  if (moved) announceEvents(db)
  return s
}

/** Removes a failed create's row, unless another replica took it over meanwhile. */
export async function deleteSandbox(db: Db, id: string, owner: string): Promise<void> {
  await db
    .deleteFrom('sandboxes')
    .where('id', '=', id)
    .where('state', '=', 'creating')
    .where('owner', '=', owner)
    .execute()
}

/**
 * Makes every transitional row `owner`'s (one process, SQLite, at start: they
 * were all the previous process's), so that recovery can finish them.
 */
export async function adoptTransitional(db: Db, owner: string): Promise<void> {
  await db
    .updateTable('sandboxes')
    .set({ owner, version: sql<number>`version + 1` })
    .where('state', 'in', ['creating', 'pausing', 'resuming', 'killing'])
    .execute()
}

/**
 * Forgets up to `limit` tombstones killed before `before` and returns their
 * ids, so that the routing catalog can forget them too. `killed` is final, so
 * nothing can revive a row between the read and the delete.
 */
export async function purgeTombstones(db: Db, before: number, limit = 1000): Promise<string[]> {
  const rows = await db
    .selectFrom('sandboxes')
    .select('id')
    .where('state', '=', 'killed')
    .where('killed_at', '<', before)
    .orderBy('killed_at')
    .limit(limit)
    .execute()
  if (!rows.length) return []
  // Only what this delete removed is reported (another replica may purge too).
  const gone = await db
    .deleteFrom('sandboxes')
    .where(
      'id',
      'in',
      rows.map((r) => r.id),
    )
    .where('state', '=', 'killed')
    .returning('id')
    .execute()
  return gone.map((r) => r.id)
}
