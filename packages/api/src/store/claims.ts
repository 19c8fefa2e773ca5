import { sql } from 'kysely'
import type { Db } from './db.js'
import { storeNow } from './replicas.js'
import { type Lifecycle, type Row, type Sandbox, toSandbox } from './sandboxes.js'
import type { SandboxState } from './schema.js'

/**
 * Leased due-work on PostgreSQL: the claims several replicas make on the same
 * rows without a coordinator. Each is one transaction that selects the rows
 * `FOR UPDATE SKIP LOCKED` (rows another replica is claiming are skipped,
 * not waited for) and moves them in the same transaction, so every row is
 * claimed by exactly one replica.
 */

/**
 * Expiries that fell due by `now`: up to `limit` running sandboxes whose
 * `end_at` passed, earliest first (the (state, end_at) index serves the
 * range; nothing else is read), each moved to `killing` (reason timeout) or
 * `pausing` as its lifecycle says, owned by `owner`. The move is the
 * expiry: it happens once, on the replica that claimed the row; the node's
 * half follows (and is taken over if that replica dies).
 */
export async function claimDue(
  db: Db,
  owner: string,
  now: number,
  limit: number,
): Promise<Sandbox[]> {
  return db.transaction().execute(async (tx) => {
    const due = await tx
      .selectFrom('sandboxes')
      .select(['id', 'lifecycle'])
      .where('state', '=', 'running')
      .where('end_at', '<=', now)
      .orderBy('end_at')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute()
    const lifecycle = (r: { lifecycle: string }) => JSON.parse(r.lifecycle) as Lifecycle
    const toKill = due.filter((r) => lifecycle(r).onTimeout !== 'pause').map((r) => r.id)
    const moved: Row[] = []
    if (toKill.length)
      moved.push(
        ...((await tx
          .updateTable('sandboxes')
          .set({
            state: 'killing',
            kill_reason: 'timeout',
            killed_at: now,
            owner,
            version: sql<number>`version + 1`,
          })
          .where('id', 'in', toKill)
          .where('state', '=', 'running')
          .returningAll()
          .execute()) as Row[]),
      )
    // files_only says already how the pause goes, so a takeover can finish it.
    for (const memory of [true, false]) {
      const toPause = due
        .filter((r) => lifecycle(r).onTimeout === 'pause')
        .filter((r) => lifecycle(r).autoPauseMemory === memory)
        .map((r) => r.id)
      if (!toPause.length) continue
      moved.push(
        ...((await tx
          .updateTable('sandboxes')
          .set({
            state: 'pausing',
            files_only: memory ? 0 : 1,
            owner,
            version: sql<number>`version + 1`,
          })
          .where('id', 'in', toPause)
          .where('state', '=', 'running')
          .returningAll()
          .execute()) as Row[]),
      )
    }
    return moved.map(toSandbox)
  })
}

export const TRANSITIONAL: SandboxState[] = ['creating', 'pausing', 'resuming', 'killing']

/**
 * Transitional rows whose owner is not a live replica (no registration with
 * a heartbeat within `staleMs`, store time; rows from before owners existed
 * have none): up to `limit` of them become `owner`'s, their version bumped
 * so that a late write of the dead owner loses its compare-and-set.
 */
export async function claimOrphaned(
  db: Db,
  owner: string,
  staleMs: number,
  limit: number,
): Promise<Sandbox[]> {
  return db.transaction().execute(async (tx) => {
    const rows = await tx
      .selectFrom('sandboxes')
      .select('id')
      .where('state', 'in', TRANSITIONAL)
      .where((eb) =>
        eb.and([
          eb.or([eb('owner', 'is', null), eb('owner', '!=', owner)]),
          eb.not(
            eb.exists(
              eb
                .selectFrom('replicas')
                .select('replicas.id')
                .whereRef('replicas.id', '=', 'sandboxes.owner')
                .where('replicas.heartbeat_at', '>=', sql<number>`${storeNow} - ${staleMs}`),
            ),
          ),
        ]),
      )
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute()
    if (!rows.length) return []
    const claimed = await tx
      .updateTable('sandboxes')
      .set({ owner, version: sql<number>`version + 1` })
      .where(
        'id',
        'in',
        rows.map((r) => r.id),
      )
      .returningAll()
      .execute()
    return (claimed as Row[]).map(toSandbox)
  })
}

/**
 * Gives up a claimed row that could not be settled (its node unreachable):
 * without an owner it is claimed again by the next takeover pass of any
 * replica, instead of waiting for this one to die.
 */
export async function releaseClaim(db: Db, id: string, owner: string): Promise<void> {
  await db
    .updateTable('sandboxes')
    .set({ owner: null, version: sql<number>`version + 1` })
    .where('id', '=', id)
    .where('owner', '=', owner)
    .where('state', 'in', TRANSITIONAL)
    .execute()
}
