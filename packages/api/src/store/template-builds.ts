import { WarrenError } from '@warren/shared'
import { sql } from 'kysely'
import type { Db } from './db.js'
import { storeNow } from './replicas.js'
import type { BuildStatus, TemplateBuildsTable } from './schema.js'

export interface BuildRow {
  id: string
  templateId: string
  teamId: string
  status: BuildStatus
  createdAt: number
  updatedAt: number
  finishedAt: number | null
  cpuCount: number
  memoryMb: number
  diskSizeMb: number
  tags: string[]
  nodeId: string | null
  envdVersion: string | null
  reason: { message: string; step: string | null } | null
}

function toBuild(r: TemplateBuildsTable): BuildRow {
  return {
    id: r.id,
    templateId: r.template_id,
    teamId: r.team_id,
    status: r.status,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
    cpuCount: r.cpu_count,
    memoryMb: r.memory_mb,
    diskSizeMb: r.disk_size_mb,
    tags: JSON.parse(r.tags) as string[],
    nodeId: r.node_id,
    envdVersion: r.envd_version,
    reason: r.reason_message === null ? null : { message: r.reason_message, step: r.reason_step },
  }
}

/** A build of one of the team's templates; anything else is not found. */
export async function getBuild(
  db: Db,
  teamId: string,
  templateId: string,
  buildId: string,
): Promise<BuildRow> {
  const row = await db
    .selectFrom('template_builds')
    .selectAll()
    .where('id', '=', buildId)
    .where('template_id', '=', templateId)
    .where('team_id', '=', teamId)
    .executeTakeFirst()
  if (!row)
    throw new WarrenError('not_found', `build '${buildId}' of template '${templateId}' not found`)
  return toBuild(row)
}

export async function listBuilds(db: Db, templateId: string): Promise<BuildRow[]> {
  const rows = await db
    .selectFrom('template_builds')
    .selectAll()
    .where('template_id', '=', templateId)
    .orderBy('created_at', 'desc')
    .execute()
  return rows.map(toBuild)
}

/**
 * One compare-and-set of a build's status: the change happens only from
 * one of `from`; the updated row, or undefined when another change won.
 */
export async function transitionBuild(
  db: Db,
  buildId: string,
  from: BuildStatus[],
  to: Partial<{
    status: BuildStatus
    nodeId: string
    envdVersion: string
    reason: { message: string; step: string | null }
    finishedAt: number
    /** The replica that streams the build from its node. */
    owner: string
  }>,
  now: number,
): Promise<BuildRow | undefined> {
  const row = await db
    .updateTable('template_builds')
    .set({
      updated_at: now,
      ...(to.status ? { status: to.status } : {}),
      ...(to.nodeId ? { node_id: to.nodeId } : {}),
      ...(to.envdVersion ? { envd_version: to.envdVersion } : {}),
      ...(to.reason ? { reason_message: to.reason.message, reason_step: to.reason.step } : {}),
      ...(to.finishedAt ? { finished_at: to.finishedAt } : {}),
      ...(to.owner ? { owner: to.owner } : {}),
    })
    .where('id', '=', buildId)
    .where('status', 'in', from)
    .returningAll()
    .executeTakeFirst()
  return row ? toBuild(row) : undefined
}

/** A ready build becomes its template's current one and gets its tags, in one transaction. */
export async function completeBuild(db: Db, build: BuildRow, envdVersion: string, now: number) {
  return db.transaction().execute(async (tx) => {
    const done = await transitionBuild(
      tx,
      build.id,
      ['building'],
      { status: 'ready', envdVersion, finishedAt: now },
      now,
    )
    if (!done) return undefined
    await tx
      .updateTable('templates')
      .set({ build_id: build.id, updated_at: now })
      .where('id', '=', build.templateId)
      .execute()
    for (const tag of build.tags) {
      await tx
        .insertInto('template_tags')
        .values({ template_id: build.templateId, tag, build_id: build.id, created_at: now })
        .onConflict((oc) =>
          oc.columns(['template_id', 'tag']).doUpdateSet({ build_id: build.id, created_at: now }),
        )
        .execute()
    }
    return done
  })
}

const interrupted = (now: number) =>
  ({
    status: 'error',
    updated_at: now,
    finished_at: now,
    reason_message: 'the build was interrupted by a restart of the API',
  }) as const

/** Builds an API restart interrupted (one process, SQLite): their stream to the node is gone. */
export async function failInterruptedBuilds(db: Db, now: number): Promise<number> {
  const res = await db
    .updateTable('template_builds')
    .set(interrupted(now))
    .where('status', 'in', ['waiting', 'building'])
    .executeTakeFirst()
  return Number(res.numUpdatedRows)
}

/**
 * Builds whose replica died (no heartbeat within `staleMs`, store time;
 * PostgreSQL): their stream to the node is gone with it. Builds of live
 * replicas run on.
 */
export async function failOrphanedBuilds(db: Db, staleMs: number, now: number): Promise<number> {
  const res = await db
    .updateTable('template_builds')
    .set(interrupted(now))
    .where('status', 'in', ['waiting', 'building'])
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('replicas')
            .select('replicas.id')
            .whereRef('replicas.id', '=', 'template_builds.owner')
            .where('replicas.heartbeat_at', '>=', sql<number>`${storeNow} - ${staleMs}`),
        ),
      ),
    )
    .executeTakeFirst()
  return Number(res.numUpdatedRows)
}

export interface LogEntryRow {
  seq: number
  at: number
  level: string
  message: string
  step: string | null
}

export async function appendLogs(db: Db, buildId: string, entries: LogEntryRow[]): Promise<void> {
  if (!entries.length) return
  await db
    .insertInto('template_build_logs')
    .values(entries.map((e) => ({ build_id: buildId, ...e })))
    .execute()
}

/** Log entries from `offset` (their index), oldest first. */
export async function readLogs(
  db: Db,
  buildId: string,
  opts: { offset?: number; sinceMs?: number; limit: number; levels?: string[]; desc?: boolean },
): Promise<LogEntryRow[]> {
  let q = db
    .selectFrom('template_build_logs')
    .select(['seq', 'at', 'level', 'message', 'step'])
    .where('build_id', '=', buildId)
  if (opts.offset !== undefined) q = q.where('seq', '>=', opts.offset)
  if (opts.sinceMs !== undefined) q = q.where('at', opts.desc ? '<=' : '>=', opts.sinceMs)
  if (opts.levels) q = q.where('level', 'in', opts.levels)
  const rows = await q
    .orderBy('seq', opts.desc ? 'desc' : 'asc')
    .limit(opts.limit)
    .execute()
  return rows.map((r) => ({ ...r, at: Number(r.at) }))
}
