import Sqlite from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { cachingStatements } from './statement-cache.js'

describe('cachingStatements', () => {
  let raw: Sqlite.Database
  afterEach(() => raw?.open && raw.close())

  it('prepares each SQL text once', () => {
    raw = new Sqlite(':memory:')
    const db = cachingStatements(raw)
    const a = db.prepare('select 1 as x')
    expect(db.prepare('select 1 as x')).toBe(a)
    expect(db.prepare('select 2 as x')).not.toBe(a)
  })

  it('gives a statement being iterated a separate twin, both reading correctly', () => {
    raw = new Sqlite(':memory:')
    raw.exec('create table t (n integer); insert into t values (1), (2), (3)')
    const db = cachingStatements(raw)
    const text = 'select n from t order by n'
    const first = db.prepare(text)
    const it = first.iterate([])
    expect(it.next().value).toEqual({ n: 1 })
    const second = db.prepare(text)
    expect(second).not.toBe(first)
    expect(second.all([])).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
    expect([...it]).toEqual([{ n: 2 }, { n: 3 }])
    // Done iterating: the cached one is handed out again.
    expect(db.prepare(text)).toBe(first)
  })

  it('keeps at most 256 statements, dropping the least recently used', () => {
    raw = new Sqlite(':memory:')
    const db = cachingStatements(raw)
    const kept = db.prepare('select 0')
    const dropped = db.prepare('select 1')
    for (let i = 2; i < 256; i++) db.prepare(`select ${i}`) // 256 in all
    expect(db.prepare('select 0')).toBe(kept) // used again: now the most recent
    db.prepare('select 256') // over the bound: 'select 1' goes
    expect(db.prepare('select 0')).toBe(kept)
    expect(db.prepare('select 1')).not.toBe(dropped)
  })

  it('serves Kysely, and a cached statement sees a column added after it was prepared', async () => {
    raw = new Sqlite(':memory:')
    const db = new Kysely<{ t: { a: number; b?: number } }>({
      dialect: new SqliteDialect({ database: cachingStatements(raw) }),
    })
    await sql`create table t (a integer)`.execute(db)
    await db.insertInto('t').values({ a: 1 }).execute()
    expect(await db.selectFrom('t').selectAll().execute()).toEqual([{ a: 1 }])
    await sql`alter table t add column b integer default 7`.execute(db)
    expect(await db.selectFrom('t').selectAll().execute()).toEqual([{ a: 1, b: 7 }])
    await db.destroy()
    expect(raw.open).toBe(false)
  })
})
