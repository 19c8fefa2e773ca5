import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PrivatePostgres, startPostgres } from '../../../../tests/helpers/postgres.js'
import { type Db, openDatabase } from './db.js'
import { parsePosition, readEvents, recordEvent, START } from './events.js'
import type { Sandbox } from './sandbox-row.js'

const sandbox = (sandboxId: string) =>
  ({
    sandboxId,
    teamId: 'team-1',
    templateId: 'base',
    metadata: {},
    killReason: 'request',
    endAt: 0,
  }) as unknown as Sandbox

describe('event positions', () => {
  it('parses only <tx>-<id>', () => {
    expect(parsePosition('0-17')).toEqual({ tx: 0, id: 17 })
    expect(parsePosition('7345-2')).toEqual({ tx: 7345, id: 2 })
    for (const bad of ['', '17', '-1-2', '1-2-3', 'a-b', '1e3-1', '9999999999999999-1'])
      expect(() => parsePosition(bad)).toThrow(/not an event id/)
  })
})

describe('the event log on PostgreSQL', () => {
  let server: PrivatePostgres
  let db: Db
  beforeAll(async () => {
    server = await startPostgres()
    db = await openDatabase(await server.createDatabase('events_horizon'), { poolSize: 4 })
  }, 60_000)
  afterAll(async () => {
    await db?.destroy()
    await server?.stop()
  })

  it('never lets a reader pass an event that a transaction still running will commit', async () => {
    // Transaction 1 records its event first (the smaller id) and stays open.
    let commitFirst!: () => void
    const held = new Promise<void>((r) => {
      commitFirst = r
    })
    let recorded!: () => void
    const firstRecorded = new Promise<void>((r) => {
      recorded = r
    })
    const first = db.transaction().execute(async (tx) => {
      await recordEvent(tx, sandbox('sbx-first'), 'killed', 1)
      recorded()
      await held
    })
    await firstRecorded
    // Transaction 2 records a later event and commits.
    await db.transaction().execute((tx) => recordEvent(tx, sandbox('sbx-second'), 'killed', 2))

    // Ordered by id alone, a reader would now take the second and move past
    // the first for good. Below the horizon it takes nothing yet.
    const q = { teamId: 'team-1', after: START, limit: 10 }
    expect(await readEvents(db, q)).toEqual([])

    commitFirst()
    await first
    const both = await readEvents(db, q)
    expect(both.map((e) => e.sandboxId)).toEqual(['sbx-first', 'sbx-second'])
    // Read after the first one's position, the second one is still to come.
    expect(
      (await readEvents(db, { ...q, after: both[0]!.position })).map((e) => e.sandboxId),
    ).toEqual(['sbx-second'])
  })
})
