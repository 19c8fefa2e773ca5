import { type Isolation, newSandboxId, storedIsolation, WarrenError } from '@warren/shared'
import { type Db, isPostgres } from './db.js'
import { lockTeam, retryOnUniqueViolation } from './locks.js'
import type { BuildStatus } from './schema.js'

export interface TemplateRow {
  id: string
  teamId: string
  createdAt: number
  updatedAt: number
  buildId: string | null
  aliases: string[]
  /** What its sandboxes run under unless a create names one; null: the default (runc). */
  isolation: Isolation | null
}

/** Template ids look like sandbox ids: 20 lowercase alphanumerics. */
export const newTemplateId = newSandboxId

/**
 * The template a build request names (E2B's v3 request): an existing one of
 * the team by that name gets a new build, else a new template takes the
 * name. One transaction: two requests for a new name make one template.
 */
export async function requestBuild(
  db: Db,
  teamId: string,
  req: {
    /** The team's template limit (null: none), checked when the name is new. */
    maxTemplates: number | null
    alias: string
    tags: string[]
    cpuCount: number
    memoryMb: number
    diskSizeMb: number
    /** Sets the template's isolation (null: back to the default); undefined leaves it. */
    isolation?: Isolation | null
    buildId: string
    now: number
  },
): Promise<{ templateId: string; buildId: string }> {
  // Two requests for one new name: the second's insert of the name fails,
  // and its retry finds the first's template.
  return retryOnUniqueViolation(() => requestBuildOnce(db, teamId, req))
}

async function requestBuildOnce(
  db: Db,
  teamId: string,
  req: Parameters<typeof requestBuild>[2],
): Promise<{ templateId: string; buildId: string }> {
  return db.transaction().execute(async (tx) => {
    const found = await tx
      .selectFrom('template_aliases')
      .select('template_id')
      .where('team_id', '=', teamId)
      .where('alias', '=', req.alias)
      .executeTakeFirst()
    let templateId = found?.template_id
    if (!templateId) {
      if (req.maxTemplates !== null) {
        // Counted under the team's lock: two new names at once cannot both take the last place.
        await lockTeam(tx, teamId)
        const { n } = await tx
          .selectFrom('templates')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('team_id', '=', teamId)
          .where('kind', '=', 'build')
          .executeTakeFirstOrThrow()
        if (Number(n) >= req.maxTemplates)
          throw new WarrenError(
            'limit_exceeded',
            `team limit of ${req.maxTemplates} templates reached; delete one first`,
          )
      }
      templateId = newTemplateId()
      await tx
        .insertInto('templates')
        .values({
          id: templateId,
          team_id: teamId,
          created_at: req.now,
          updated_at: req.now,
          build_id: null,
          isolation: req.isolation ?? null,
        })
        .execute()
      await tx
        .insertInto('template_aliases')
        .values({ team_id: teamId, alias: req.alias, template_id: templateId })
        .execute()
    } else if (req.isolation !== undefined) {
      await tx
        .updateTable('templates')
        .set({ isolation: req.isolation })
        .where('id', '=', templateId)
        .execute()
    }
    await tx
      .insertInto('template_builds')
      .values({
        id: req.buildId,
        template_id: templateId,
        team_id: teamId,
        status: 'pending',
        created_at: req.now,
        updated_at: req.now,
        finished_at: null,
        cpu_count: req.cpuCount,
        memory_mb: req.memoryMb,
        disk_size_mb: req.diskSizeMb,
        tags: JSON.stringify(req.tags),
        node_id: null,
        envd_version: null,
        reason_message: null,
        reason_step: null,
        owner: null,
      })
      .execute()
    return { templateId, buildId: req.buildId }
  })
}

/** A template of the team by id; another team's is not found, as an unknown one. */
export async function getTemplate(db: Db, teamId: string, id: string): Promise<TemplateRow> {
  const row = await db
    .selectFrom('templates')
    .selectAll()
    .where('id', '=', id)
    .where('team_id', '=', teamId)
    .executeTakeFirst()
  if (!row) throw new WarrenError('not_found', `template '${id}' not found`)
  return { ...toRow(row), aliases: await aliasesOf(db, id) }
}

export async function listTemplates(db: Db, teamId: string): Promise<TemplateRow[]> {
  const rows = await db
    .selectFrom('templates')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('kind', '=', 'build')
    .orderBy('created_at')
    .execute()
  return Promise.all(rows.map(async (r) => ({ ...toRow(r), aliases: await aliasesOf(db, r.id) })))
}

async function aliasesOf(db: Db, templateId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('template_aliases')
    .select('alias')
    .where('template_id', '=', templateId)
    .execute()
  return rows.map((r) => r.alias)
}

function toRow(r: {
  id: string
  team_id: string
  created_at: number
  updated_at: number
  build_id: string | null
  isolation: string | null
}): Omit<TemplateRow, 'aliases'> {
  return {
    id: r.id,
    teamId: r.team_id,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    buildId: r.build_id,
    isolation: storedIsolation(r.isolation),
  }
}

/**
 * A reference as E2B clients give it — a template id, a name, or
 * `name:tag` — as the team's template (and the tag's build). Undefined when
 * it names none of the team's templates.
 */
export async function findTemplate(
  db: Db,
  teamId: string,
  ref: string,
): Promise<{ template: TemplateRow; tagBuildId?: string } | undefined> {
  const colon = ref.lastIndexOf(':')
  const name = colon === -1 ? ref : ref.slice(0, colon)
  const tag = colon === -1 ? undefined : ref.slice(colon + 1)
  const alias = await db
    .selectFrom('template_aliases')
    .select('template_id')
    .where('team_id', '=', teamId)
    .where('alias', '=', name)
    .executeTakeFirst()
  const id = alias?.template_id ?? name
  const template = await getTemplate(db, teamId, id).catch(() => undefined)
  if (!template) return undefined
  if (tag === undefined) return { template }
  const t = await db
    .selectFrom('template_tags')
    .select('build_id')
    .where('template_id', '=', template.id)
    .where('tag', '=', tag)
    .executeTakeFirst()
  if (!t) throw new WarrenError('not_found', `template '${name}' has no tag '${tag}'`)
  return { template, tagBuildId: t.build_id }
}

/** Whether the template is owned by some team (its id is then not a built-in one). */
export async function isCustomTemplate(db: Db, id: string): Promise<boolean> {
  return !!(await db.selectFrom('templates').select('id').where('id', '=', id).executeTakeFirst())
}

/**
 * Removes a template's records, unless one of its builds is still queued or
 * running (conflict): checked and deleted in one transaction.
 */
export async function deleteTemplateRows(db: Db, teamId: string, id: string): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const row = await tx
      .selectFrom('templates')
      .select('id')
      .where('id', '=', id)
      .where('team_id', '=', teamId)
      .executeTakeFirst()
    if (!row) throw new WarrenError('not_found', `template '${id}' not found`)
    // A build starting meanwhile (pending → waiting) is waited for and then
    // seen (PostgreSQL; SQLite serializes writers).
    if (isPostgres(tx))
      await tx
        .selectFrom('template_builds')
        .select('id')
        .where('template_id', '=', id)
        .forUpdate()
        .execute()
    const active: BuildStatus[] = ['waiting', 'building']
    const busy = await tx
      .selectFrom('template_builds')
      .select('id')
      .where('template_id', '=', id)
      .where('status', 'in', active)
      .executeTakeFirst()
    if (busy) throw new WarrenError('conflict', `template '${id}' has a build in progress`)
    const builds = tx.selectFrom('template_builds').select('id').where('template_id', '=', id)
    await tx.deleteFrom('template_build_logs').where('build_id', 'in', builds).execute()
    await tx.deleteFrom('template_builds').where('template_id', '=', id).execute()
    await tx.deleteFrom('template_tags').where('template_id', '=', id).execute()
    await tx.deleteFrom('template_aliases').where('template_id', '=', id).execute()
    await tx.deleteFrom('templates').where('id', '=', id).execute()
  })
}

export interface TagRow {
  tag: string
  buildId: string
  createdAt: number
}

export async function listTags(db: Db, templateId: string): Promise<TagRow[]> {
  const rows = await db
    .selectFrom('template_tags')
    .selectAll()
    .where('template_id', '=', templateId)
    .orderBy('tag')
    .execute()
  return rows.map((r) => ({ tag: r.tag, buildId: r.build_id, createdAt: Number(r.created_at) }))
}

/** Points tags at a build (replacing where they pointed before). */
export async function assignTags(
  db: Db,
  templateId: string,
  buildId: string,
  tags: string[],
  now: number,
): Promise<void> {
  for (const tag of tags) {
    await db
      .insertInto('template_tags')
      .values({ template_id: templateId, tag, build_id: buildId, created_at: now })
      .onConflict((oc) =>
        oc.columns(['template_id', 'tag']).doUpdateSet({ build_id: buildId, created_at: now }),
      )
      .execute()
  }
}

export async function removeTags(db: Db, templateId: string, tags: string[]): Promise<number> {
  const res = await db
    .deleteFrom('template_tags')
    .where('template_id', '=', templateId)
    .where('tag', 'in', tags)
    .executeTakeFirst()
  return Number(res.numDeletedRows)
}
