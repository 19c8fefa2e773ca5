// Migration 0007 on a store made before admin keys existed: the first key of
// the default team (the one `warren up` printed) becomes the admin key; every
// other key, of any team, stays a team key.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import { Kysely, Migrator, SqliteDialect } from 'kysely'
import { afterAll, expect, it } from 'vitest'
import { openDatabase } from './db.js'
import { migrationProvider } from './migrations.js'
import type { Database } from './schema.js'

const dir = mkdtempSync(join(tmpdir(), 'warren-migration-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

it('makes the default team’s first key the admin key, and no other', async () => {
  const path = join(dir, 'warren.db')
  const before = new Kysely<Database>({
    dialect: new SqliteDialect({ database: new Sqlite(path) }),
  })
  const all = await migrationProvider.getMigrations()
  const { error } = await new Migrator({
    db: before,
    provider: {
      getMigrations: async () =>
        Object.fromEntries(Object.entries(all).filter(([name]) => name < '0007')),
    },
  }).migrateToLatest()
  expect(error).toBeUndefined()
  const team = (id: string, name: string) =>
    before
      .insertInto('teams')
      .values({ id, name, max_concurrent: 5, max_lifetime_s: 3600, created_at: 1 })
      .execute()
  await team('t-default', 'default')
  await team('t-other', 'other')
  for (const [id, teamId, name] of [
    ['k1', 't-default', 'first key'],
    ['k2', 't-default', 'cli'],
    ['k3', 't-other', 'first key'],
  ] as const) {
    // Rows as the store held them before the column existed.
    await before
      .insertInto('api_keys')
      .values({
        id,
        team_id: teamId,
        name,
        key_hash: `hash-${id}`,
        key_mask: 'e2b_…',
        created_at: 1,
        last_used_at: null,
        revoked_at: null,
      })
      .execute()
  }
  await before.destroy()

  const db = await openDatabase(`sqlite:${path}`)
  try {
    const keys = await db.selectFrom('api_keys').select(['id', 'admin']).orderBy('id').execute()
    expect(keys).toEqual([
      { id: 'k1', admin: 1 },
      { id: 'k2', admin: 0 },
      { id: 'k3', admin: 0 },
    ])
  } finally {
    await db.destroy()
  }
})
