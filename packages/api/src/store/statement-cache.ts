import type { Database, Statement } from 'better-sqlite3'
import type { SqliteDatabase } from 'kysely'

/** Distinct statements kept; past this the least recently used is dropped. */
const MAX_STATEMENTS = 256

/**
 * The SQLite handle Kysely is given, preparing each distinct SQL text once.
 * Kysely's SQLite driver prepares every query it runs, and a profile of the
 * API under load put a seventh of its CPU in preparing the same few dozen
 * statements again. A statement still being iterated (a streamed query) is
 * busy: a query with its text then gets a statement of its own.
 */
export function cachingStatements(db: Database): SqliteDatabase {
  const cache = new Map<string, Statement>()
  return {
    close: () => {
      cache.clear()
      db.close()
    },
    prepare(sql) {
      const hit = cache.get(sql)
      if (hit && !hit.busy) {
        // Most recently used last, so the first in the map is the one to drop.
        cache.delete(sql)
        cache.set(sql, hit)
        return hit
      }
      const stmt = db.prepare(sql)
      if (hit) return stmt
      cache.set(sql, stmt)
      if (cache.size > MAX_STATEMENTS) cache.delete(cache.keys().next().value as string)
      return stmt
    },
  }
}
