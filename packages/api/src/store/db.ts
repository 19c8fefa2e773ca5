import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { WarrenError } from '@warren/shared'
import Sqlite from 'better-sqlite3'
import { Kysely, Migrator, SqliteDialect } from 'kysely'
import { migrationProvider } from './migrations.js'
import type { Database } from './schema.js'

export type Db = Kysely<Database>

/**
 * The store holds envd access tokens, traffic tokens and users' env vars:
 * only root may read it. Its directory is made (0700) if missing; the file
 * and SQLite's journal files (which take the file's mode) are 0600, also
 * when an older Warren left them world-readable.
 */
function protect(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  closeSync(openSync(path, 'a', 0o600))
  for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600)
}

/**
 * Opens the store named by a URL and brings its schema up to date. SQLite is
 * the embedded default; the queries are written with Kysely against portable
 * SQL so that a PostgreSQL dialect can serve the same query layer.
 */
export async function openDatabase(url: string): Promise<Db> {
  if (!url.startsWith('sqlite:')) {
    throw new WarrenError(
      'invalid_argument',
      `unsupported database '${url}' (supported: sqlite:<path>)`,
    )
  }
  const path = url.slice('sqlite:'.length)
  if (path !== ':memory:') protect(path)
  const sqlite = new Sqlite(path)
  // WAL: readers never wait for the writer; busy_timeout: a second process
  // (the CLI managing keys) waits instead of failing.
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('busy_timeout = 5000')
  sqlite.pragma('foreign_keys = ON')
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
  const { error } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest()
  if (error) {
    await db.destroy()
    throw new WarrenError('internal', `database migration failed: ${String(error)}`, {
      cause: error,
    })
  }
  return db
}
