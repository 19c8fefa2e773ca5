import { type Kysely, type Migration, type MigrationProvider, sql } from 'kysely'
import { eventsMigration } from './migrations-events.js'
import { replicasMigration } from './migrations-replicas.js'

/**
 * Versioned migrations, in code so they ship with the build. Each is applied
 * once, in name order, and recorded by Kysely's migrator. Only portable SQL
 * (SQLite and PostgreSQL): text, integer, bigint (epoch milliseconds; the
 * PostgreSQL pool reads int8 as numbers), booleans as 0/1 integers, no
 * dialect-specific defaults. What only PostgreSQL has (change notification)
 * is added by a migration that asks which store it runs on.
 */
const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('teams')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('max_concurrent', 'integer', (c) => c.notNull())
        .addColumn('max_lifetime_s', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('key_mask', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute()
      await db.schema
        .createTable('sandboxes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
        .addColumn('template_id', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('end_at', 'bigint', (c) => c.notNull())
        .addColumn('timeout_s', 'integer', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('env_vars', 'text', (c) => c.notNull())
        .addColumn('envd_version', 'text', (c) => c.notNull())
        .addColumn('envd_access_token', 'text')
        .addColumn('traffic_access_token', 'text')
        .addColumn('cpu_count', 'integer', (c) => c.notNull())
        .addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('disk_size_mb', 'integer', (c) => c.notNull())
        .addColumn('lifecycle', 'text', (c) => c.notNull())
        .addColumn('network', 'text', (c) => c.notNull())
        .addColumn('allow_internet_access', 'integer')
        .addColumn('address', 'text')
        .addColumn('kill_reason', 'text')
        .addColumn('killed_at', 'bigint')
        .execute()
      await db.schema
        .createIndex('sandboxes_team_state')
        .on('sandboxes')
        .columns(['team_id', 'state'])
        .execute()
      await db.schema
        .createIndex('sandboxes_state_end')
        .on('sandboxes')
        .columns(['state', 'end_at'])
        .execute()
      await db.schema
        .createIndex('sandboxes_team_started')
        .on('sandboxes')
        .columns(['team_id', 'started_at', 'id'])
        .execute()
    },
  },
}

migrations['0002_pause'] = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('sandboxes').addColumn('paused_kind', 'text').execute()
    await db.schema.alterTable('sandboxes').addColumn('paused_at', 'bigint').execute()
    // Paused with memory: false by request: traffic may not resume it.
    await db.schema.alterTable('sandboxes').addColumn('files_only', 'integer').execute()
    await db.schema.alterTable('sandboxes').addColumn('resumed_from', 'text').execute()
  },
}

migrations['0003_templates'] = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('templates')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('build_id', 'text')
      .execute()
    await db.schema
      .createTable('template_aliases')
      .addColumn('team_id', 'text', (c) => c.notNull())
      .addColumn('alias', 'text', (c) => c.notNull())
      .addColumn('template_id', 'text', (c) => c.notNull().references('templates.id'))
      .addPrimaryKeyConstraint('template_aliases_pk', ['team_id', 'alias'])
      .execute()
    await db.schema
      .createTable('template_tags')
      .addColumn('template_id', 'text', (c) => c.notNull().references('templates.id'))
      .addColumn('tag', 'text', (c) => c.notNull())
      .addColumn('build_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('template_tags_pk', ['template_id', 'tag'])
      .execute()
    await db.schema
      .createTable('template_builds')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('template_id', 'text', (c) => c.notNull().references('templates.id'))
      .addColumn('team_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('finished_at', 'bigint')
      .addColumn('cpu_count', 'integer', (c) => c.notNull())
      .addColumn('memory_mb', 'integer', (c) => c.notNull())
      .addColumn('disk_size_mb', 'integer', (c) => c.notNull())
      .addColumn('tags', 'text', (c) => c.notNull())
      .addColumn('node_id', 'text')
      .addColumn('envd_version', 'text')
      .addColumn('reason_message', 'text')
      .addColumn('reason_step', 'text')
      .execute()
    await db.schema
      .createIndex('template_builds_status')
      .on('template_builds')
      .columns(['status'])
      .execute()
    await db.schema
      .createTable('template_build_logs')
      .addColumn('build_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('step', 'text')
      .addPrimaryKeyConstraint('template_build_logs_pk', ['build_id', 'seq'])
      .execute()
    await db.schema
      .createTable('template_files')
      .addColumn('team_id', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('template_files_pk', ['team_id', 'hash'])
      .execute()
  },
}

// Snapshots and forks are templates too (created from, deleted through
// /templates), made from a sandbox's files rather than built.
migrations['0004_snapshots'] = {
  async up(db) {
    await db.schema
      .alterTable('templates')
      .addColumn('kind', 'text', (c) => c.notNull().defaultTo('build'))
      .execute()
    await db.schema.alterTable('templates').addColumn('source_sandbox_id', 'text').execute()
  },
}

// Volumes live on one node each; which sandboxes mount which volume is a
// table of its own, so that a delete can ask "does a live sandbox mount
// it?" in one query.
migrations['0005_volumes'] = {
  async up(db) {
    await db.schema
      .createTable('volumes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('node_id', 'text', (c) => c.notNull())
      .addColumn('size_mb', 'integer', (c) => c.notNull())
      .addColumn('token', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute()
    await db.schema
      .createIndex('volumes_team_name')
      .on('volumes')
      .columns(['team_id', 'name'])
      .unique()
      .execute()
    await db.schema
      .createTable('sandbox_volume_mounts')
      .addColumn('sandbox_id', 'text', (c) =>
        c.notNull().references('sandboxes.id').onDelete('cascade'),
      )
      .addColumn('volume_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('sandbox_volume_mounts_pk', ['sandbox_id', 'volume_id'])
      .execute()
    await db.schema
      .createIndex('sandbox_volume_mounts_volume')
      .on('sandbox_volume_mounts')
      .columns(['volume_id'])
      .execute()
    // JSON: the mounts as the sandbox's views report them ([{volumeId, name, path}]).
    await db.schema
      .alterTable('sandboxes')
      .addColumn('volume_mounts', 'text', (c) => c.notNull().defaultTo('[]'))
      .execute()
  },
}

migrations['0006_replicas'] = replicasMigration

// Remote clusters (nodes and edge proxies with a secret of their own), and
// the cluster each sandbox belongs to (null: the API's own).
migrations['0007_clusters'] = {
  async up(db) {
    await db.schema
      .createTable('clusters')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute()
    await db.schema.alterTable('sandboxes').addColumn('cluster', 'text').execute()
  },
}

// Operators' keys: an admin key may manage teams, their limits and keys, and
// see the nodes (/admin/*). The first key a store made (`warren up`'s,
// 'first key' of the default team) was the operator's all along.
migrations['0008_admin_keys'] = {
  async up(db) {
    await db.schema
      .alterTable('api_keys')
      .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await sql`update api_keys set admin = 1 where name = 'first key'
      and team_id in (select id from teams where name = 'default')`.execute(db)
  },
}

migrations['0009_events'] = eventsMigration

// Two more team limits, both off (null) until an operator sets them.
migrations['0010_team_limits'] = {
  async up(db) {
    await db.schema.alterTable('teams').addColumn('max_memory_mb', 'integer').execute()
    await db.schema.alterTable('teams').addColumn('max_templates', 'integer').execute()
  },
}

// Isolation kept by the control plane: each sandbox's (so moves and forks
// keep it without asking a node), a template's default, a team's policy.
// Null is runc (rows made before), or no default / no policy.
migrations['0011_isolation'] = {
  async up(db) {
    await db.schema.alterTable('sandboxes').addColumn('isolation', 'text').execute()
    await db.schema.alterTable('templates').addColumn('isolation', 'text').execute()
    await db.schema.alterTable('teams').addColumn('required_isolation', 'text').execute()
  },
}

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations
  },
}
