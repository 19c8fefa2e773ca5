import { sql } from 'kysely'
import type { Db } from './db.js'

/**
 * The store's own time in epoch milliseconds (PostgreSQL): replicas judge
 * each other's heartbeats by one clock, whatever their hosts' clocks say.
 */
export const storeNow = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`

/**
 * The registry of API replicas. Each process registers under a fresh id and
 * writes a heartbeat (store time) every few hundred milliseconds; one whose
 * heartbeat is older than the staleness bound is dead, and the others take
 * over the transitional rows it owned (lifecycle/takeover.ts).
 */
export async function registerReplica(
  db: Db,
  r: { id: string; host: string; pid: number },
): Promise<void> {
  await db
    .insertInto('replicas')
    .values({ id: r.id, host: r.host, pid: r.pid, started_at: storeNow, heartbeat_at: storeNow })
    .execute()
}

/**
 * The replica is alive now (store time, which is returned). Undefined when
 * its registration is gone: another replica took it for dead and took over
 * its work, so this incarnation must not go on claiming (it registers again
 * under a new id).
 */
export async function heartbeat(db: Db, id: string): Promise<number | undefined> {
  const row = await db
    .updateTable('replicas')
    .set({ heartbeat_at: storeNow })
    .where('id', '=', id)
    .returning('heartbeat_at')
    .executeTakeFirst()
  return row?.heartbeat_at
}

export async function unregisterReplica(db: Db, id: string): Promise<void> {
  await db.deleteFrom('replicas').where('id', '=', id).execute()
}

/** Forgets replicas whose last heartbeat is more than `staleMs` old (store time); returns their ids. */
export async function forgetDeadReplicas(db: Db, staleMs: number): Promise<string[]> {
  const rows = await db
    .deleteFrom('replicas')
    .where('heartbeat_at', '<', sql<number>`${storeNow} - ${staleMs}`)
    .returning('id')
    .execute()
  return rows.map((r) => r.id)
}

/** Replicas registered with this host identity (other than `except`): their ids and pids. */
export async function replicasOn(
  db: Db,
  host: string,
  except: string,
): Promise<Array<{ id: string; pid: number }>> {
  return db
    .selectFrom('replicas')
    .select(['id', 'pid'])
    .where('host', '=', host)
    .where('id', '!=', except)
    .execute()
}

/**
 * Takes (or keeps) the named lease for `ttlMs` unless another replica holds
 * one that has not run out: one atomic upsert, so of two replicas asking at
 * once one gets it. True when `holder` holds it now.
 */
export async function takeLease(
  db: Db,
  name: string,
  holder: string,
  now: number,
  ttlMs: number,
): Promise<boolean> {
  const row = await db
    .insertInto('leases')
    .values({ name, holder, expires_at: now + ttlMs })
    .onConflict((oc) =>
      oc
        .column('name')
        .doUpdateSet({ holder, expires_at: now + ttlMs })
        .where((eb) =>
          eb.or([eb('leases.holder', '=', holder), eb('leases.expires_at', '<', now)]),
        ),
    )
    .returning('holder')
    .executeTakeFirst()
  return row?.holder === holder
}
