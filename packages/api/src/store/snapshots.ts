import { type Isolation, WarrenError } from '@warren/shared'
import type { Db } from './db.js'
import { isUniqueViolation } from './locks.js'
import type { TemplateKind } from './schema.js'

export interface SnapshotRow {
  snapshotId: string
  sandboxId: string | null
  createdAt: number
  names: string[]
}

/**
 * Records a snapshot (or a fork's files) of a sandbox as one of the team's
 * templates, with its name if it has one: one transaction, so a name taken
 * meanwhile leaves nothing behind (409).
 */
export async function insertSnapshot(
  db: Db,
  s: {
    id: string
    teamId: string
    buildId: string
    kind: Exclude<TemplateKind, 'build'>
    sourceSandboxId: string
    name: string | undefined
    /** The source's: sandboxes made from it get it unless they name another. */
    isolation: Isolation
    now: number
  },
): Promise<void> {
  const taken = () => new WarrenError('conflict', `the name '${s.name}' is taken`)
  // The check reads; a concurrent insert of the same name (another replica)
  // is refused by the key instead: the same 409.
  await db.transaction().execute(async (tx) => {
    if (s.name) {
      const found = await tx
        .selectFrom('template_aliases')
        .select('template_id')
        .where('team_id', '=', s.teamId)
        .where('alias', '=', s.name)
        .executeTakeFirst()
      if (found) throw taken()
    }
    await tx
      .insertInto('templates')
      .values({
        id: s.id,
        team_id: s.teamId,
        created_at: s.now,
        updated_at: s.now,
        build_id: s.buildId,
        kind: s.kind,
        source_sandbox_id: s.sourceSandboxId,
        isolation: s.isolation,
      })
      .execute()
    if (s.name)
      await tx
        .insertInto('template_aliases')
        .values({ team_id: s.teamId, alias: s.name, template_id: s.id })
        .execute()
        .catch((err: unknown) => {
          throw isUniqueViolation(err) ? taken() : err
        })
  })
}

/** The team's snapshots, newest first, after a cursor (created_at, id). */
export async function listSnapshots(
  db: Db,
  q: {
    teamId: string
    sandboxId?: string | undefined
    name?: string | undefined
    limit: number
    cursor?: { startedAt: number; id: string } | undefined
  },
): Promise<{ items: SnapshotRow[]; more: boolean }> {
  let query = db
    .selectFrom('templates')
    .leftJoin('template_aliases', 'template_aliases.template_id', 'templates.id')
    .select([
      'templates.id as id',
      'templates.created_at as created_at',
      'templates.source_sandbox_id as source',
      'template_aliases.alias as alias',
    ])
    .where('templates.team_id', '=', q.teamId)
    .where('templates.kind', '=', 'snapshot')
  if (q.sandboxId) query = query.where('templates.source_sandbox_id', '=', q.sandboxId)
  if (q.name) query = query.where('template_aliases.alias', '=', q.name)
  const c = q.cursor
  if (c)
    query = query.where((eb) =>
      eb.or([
        eb('templates.created_at', '<', c.startedAt),
        eb.and([eb('templates.created_at', '=', c.startedAt), eb('templates.id', '<', c.id)]),
      ]),
    )
  const rows = await query
    .orderBy('templates.created_at', 'desc')
    .orderBy('templates.id', 'desc')
    .limit(q.limit + 1)
    .execute()
  const items = rows.slice(0, q.limit).map((r) => ({
    snapshotId: r.id,
    sandboxId: r.source,
    createdAt: Number(r.created_at),
    names: r.alias ? [r.alias] : [],
  }))
  return { items, more: rows.length > q.limit }
}
