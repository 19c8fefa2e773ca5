import type { Kysely } from 'kysely'
import { isPostgres } from './db.js'
import type { Database } from './schema.js'

/**
 * Serializes the transactions that take a place in a team's limit (create,
 * resume), across replicas: the team's row is locked `FOR NO KEY UPDATE`
 * until the transaction ends, so the next one counts after this one
 * committed (under READ COMMITTED each statement sees what committed before
 * it). Not `FOR UPDATE`: that would also block the foreign-key checks of
 * rows referencing the team (`FOR KEY SHARE`), and a transaction holding a
 * volume's row while its second update of that row checks the team's key
 * would deadlock with a create waiting for the volume. SQLite serializes
 * writers by itself: nothing to lock there.
 */
export async function lockTeam(tx: Kysely<Database>, teamId: string): Promise<void> {
  if (!isPostgres(tx)) return
  await tx.selectFrom('teams').select('id').where('id', '=', teamId).forNoKeyUpdate().execute()
}

/** A unique or primary key constraint refused an insert (another writer was first). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown } | undefined
  // PostgreSQL's SQLSTATE; better-sqlite3's extended result codes.
  return (
    e?.code === '23505' ||
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  )
}

/**
 * Runs `fn` again once if a concurrent writer took a unique key first: the
 * second run sees the winner's row (read-then-insert is not atomic under
 * READ COMMITTED).
 */
export async function retryOnUniqueViolation<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (!isUniqueViolation(err)) throw err
    return fn()
  }
}
