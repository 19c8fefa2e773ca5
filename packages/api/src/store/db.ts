import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { WarrenError } from '@warren/shared'
import Sqlite from 'better-sqlite3'
import { Kysely, Migrator, PostgresAdapter, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { migrationProvider } from './migrations.js'
import type { Database } from './schema.js'
import { cachingStatements } from './statement-cache.js'

export type Db = Kysely<Database>

export type DatabaseUrl = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string }

/**
 * `sqlite:<path>` (the embedded default) or `postgres://…` /
 * `postgresql://…` (several API replicas); anything else is a configuration
 * error, named before anything is opened.
 */
export function parseDatabaseUrl(url: string): DatabaseUrl {
  if (url.startsWith('sqlite:') && url.length > 'sqlite:'.length)
    return { kind: 'sqlite', path: url.slice('sqlite:'.length) }
  if (/^postgres(ql)?:\/\/./.test(url)) return { kind: 'postgres', url }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]
  throw new WarrenError(
    'invalid_argument',
    `unsupported database URL${scheme ? ` scheme '${scheme}:'` : ` '${url}'`} in WARREN_DATABASE_URL (supported: sqlite:<path>, postgres://user:password@host:port/database)`,
  )
}

/** Whether the store is PostgreSQL (several replicas) rather than SQLite (one process). */
export function isPostgres(db: Kysely<unknown> | Db): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter
}

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

function openSqlite(path: string): Db {
  if (path !== ':memory:') protect(path)
  const sqlite = new Sqlite(path)
  // WAL: readers never wait for the writer; busy_timeout: a second process
  // (the CLI managing keys) waits instead of failing.
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('busy_timeout = 5000')
  sqlite.pragma('foreign_keys = ON')
  return new Kysely<Database>({
    dialect: new SqliteDialect({ database: cachingStatements(sqlite) }),
  })
}

/**
 * Times are bigint (int8) columns of epoch milliseconds, and counts are int8
 * too: pg hands int8 over as strings (it cannot know the values fit), but
 * every one of ours is far below 2^53, so they become numbers here, as
 * SQLite returns them, and the model sees the same types on both stores.
 */
const INT8_OID = 20
function parseInt8(text: string): number {
  const n = Number(text)
  if (!Number.isSafeInteger(n)) throw new WarrenError('internal', `int8 ${text} exceeds 2^53`)
  return n
}

const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? parseInt8
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
}

/** The PostgreSQL URL each open store was opened with (for its LISTEN connection). */
const urls = new WeakMap<object, string>()

export function postgresPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, types })
  // An idle client whose connection dies (the server restarted) emits here;
  // the pool replaces it. Without a listener the process would crash.
  pool.on('error', () => {})
  return pool
}

export interface OpenOptions {
  /** PostgreSQL connections of this process's pool. */
  poolSize?: number
}

/**
 * Opens the store named by a URL and brings its schema up to date. The same
 * migrations run on both stores; on PostgreSQL Kysely's migrator takes an
 * advisory lock for the run, so replicas starting together migrate once.
 */
export async function openDatabase(url: string, opts: OpenOptions = {}): Promise<Db> {
  const target = parseDatabaseUrl(url)
  const db =
    target.kind === 'sqlite'
      ? openSqlite(target.path)
      : new Kysely<Database>({
          dialect: new PostgresDialect({ pool: postgresPool(target.url, opts.poolSize) }),
        })
  if (target.kind === 'postgres') urls.set(db, target.url)
  const { error } = await new Migrator({
    db,
    provider: migrationProvider,
    // Migrations of parallel lines of work (each its own small migration)
    // may land in any order; each is independent of the others'.
    allowUnorderedMigrations: true,
  }).migrateToLatest()
  if (error) {
    await db.destroy()
    throw new WarrenError('internal', `database migration failed: ${String(error)}`, {
      cause: error,
    })
  }
  return db
}

/**
 * A connection of its own to the store's PostgreSQL, outside the pool: LISTEN
 * holds its connection for as long as it listens.
 */
export function listenerClient(db: Db): pg.Client {
  const url = urls.get(db)
  if (!url) throw new WarrenError('internal', 'the store is not PostgreSQL')
  return new pg.Client({ connectionString: url, types })
}
