import { type Kysely, type Migration, PostgresAdapter, sql } from 'kysely'

/**
 * Lifecycle events and webhooks:
 * - `events`: one row per settled change of a sandbox (created, paused,
 *   resumed, killed, timeout changed, network updated), written in the
 *   transaction of the change itself. Its position is `(tx, id)`: on
 *   PostgreSQL `tx` is the writing transaction's id, so a reader that reads
 *   only below the oldest transaction still running (`pg_snapshot_xmin`)
 *   never passes an event that commits later with a smaller position (ids
 *   from a sequence are taken in insert order, not commit order). SQLite
 *   serializes writers: `tx` is 0 and `id` alone is the commit order.
 * - `webhooks`: a team's receivers (URL, HMAC secret, kinds).
 * - `webhook_deliveries`: one row per event per matching webhook, made in the
 *   event's transaction (durable: a restart loses none), claimed by one
 *   replica at a time (`claimed_by`/`claimed_until`, compare-and-set).
 */
export const eventsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter
    await db.schema
      .createTable('events')
      .addColumn('id', postgres ? 'bigserial' : 'integer', (c) =>
        postgres ? c.primaryKey() : c.primaryKey().autoIncrement(),
      )
      .addColumn('tx', 'bigint', (c) =>
        c.notNull().defaultTo(postgres ? sql`(pg_current_xact_id()::text::bigint)` : 0),
      )
      .addColumn('team_id', 'text', (c) => c.notNull())
      .addColumn('sandbox_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute()
    await db.schema.createIndex('events_position').on('events').columns(['tx', 'id']).execute()
    await db.schema
      .createIndex('events_team_position')
      .on('events')
      .columns(['team_id', 'tx', 'id'])
      .execute()
    await db.schema.createIndex('events_at').on('events').columns(['at']).execute()

    await db.schema
      .createTable('webhooks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('secret', 'text', (c) => c.notNull())
      .addColumn('kinds', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute()
    await db.schema.createIndex('webhooks_team').on('webhooks').columns(['team_id']).execute()

    await db.schema
      .createTable('webhook_deliveries')
      .addColumn('id', postgres ? 'bigserial' : 'integer', (c) =>
        postgres ? c.primaryKey() : c.primaryKey().autoIncrement(),
      )
      .addColumn('webhook_id', 'text', (c) =>
        c.notNull().references('webhooks.id').onDelete('cascade'),
      )
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('sandbox_id', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_at', 'bigint', (c) => c.notNull())
      .addColumn('claimed_by', 'text')
      .addColumn('claimed_until', 'bigint')
      .addColumn('last_status', 'integer')
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('finished_at', 'bigint')
      .execute()
    // Due work: pending rows by time; the head of each (webhook, sandbox) queue.
    await db.schema
      .createIndex('webhook_deliveries_due')
      .on('webhook_deliveries')
      .columns(['state', 'next_at'])
      .execute()
    await db.schema
      .createIndex('webhook_deliveries_queue')
      .on('webhook_deliveries')
      .columns(['webhook_id', 'sandbox_id', 'state', 'id'])
      .execute()
  },
}
