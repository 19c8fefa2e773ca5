import { type Kysely, type Migration, PostgresAdapter, sql } from 'kysely'

/** The channel every committed change of a sandbox's route is announced on (PostgreSQL). */
export const SANDBOX_CHANNEL = 'warren_sandboxes'

/**
 * Several API replicas on one store:
 * - `replicas`: each API process registers and heartbeats; a replica whose
 *   heartbeat is stale is dead, and others take over what it owned;
 * - `sandboxes.owner`, `template_builds.owner`: the replica that moved a row
 *   into a transitional state (creating, pausing, resuming, killing; a build
 *   waiting or building) and is finishing it;
 * - `leases`: named periodic work (node sync, tombstone purge) that one
 *   replica at a time does, until its lease runs out;
 * - `teams.name` unique: replicas starting together make one default team;
 * - on PostgreSQL, a trigger announces each committed change of what a route
 *   shows (state, node, lifecycle, kill reason) with the row's version, so
 *   every replica's catalog follows changes made on any other. Lease
 *   extensions change none of these and stay silent.
 */
export const replicasMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('replicas')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('host', 'text', (c) => c.notNull())
      .addColumn('pid', 'integer', (c) => c.notNull())
      .addColumn('started_at', 'bigint', (c) => c.notNull())
      .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
      .execute()
    await db.schema
      .createTable('leases')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute()
    await db.schema.alterTable('sandboxes').addColumn('owner', 'text').execute()
    await db.schema.alterTable('template_builds').addColumn('owner', 'text').execute()
    await db.schema.createIndex('teams_name').on('teams').column('name').unique().execute()
    // Transitional rows are found by state (the takeover of a dead replica's work).
    await db.schema
      .createIndex('sandboxes_state_owner')
      .on('sandboxes')
      .columns(['state', 'owner'])
      .execute()
    if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return
    await sql`
      create function warren_sandbox_changed() returns trigger language plpgsql as $$
      begin
        if tg_op = 'DELETE' then
          perform pg_notify(${sql.lit(SANDBOX_CHANNEL)}, old.id || ':-1');
          return old;
        end if;
        if new.state = 'creating' then return new; end if;
        if tg_op = 'UPDATE'
          and new.state = old.state and new.node_id = old.node_id
          and new.lifecycle = old.lifecycle
          and new.kill_reason is not distinct from old.kill_reason then
          return new;
        end if;
        perform pg_notify(${sql.lit(SANDBOX_CHANNEL)}, new.id || ':' || new.version);
        return new;
      end $$`.execute(db)
    await sql`
      create trigger sandboxes_changed after insert or update or delete on sandboxes
      for each row execute function warren_sandbox_changed()`.execute(db)
  },
}
