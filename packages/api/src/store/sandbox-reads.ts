import type { Expression, SqlBool } from 'kysely'
import type { Db } from './db.js'
import { type Row, type Sandbox, toSandbox } from './sandbox-row.js'
import type { SandboxState } from './schema.js'

// Reads of sandbox records: by id, by state, and the team's paged list.

export async function getSandbox(db: Db, id: string): Promise<Sandbox | undefined> {
  const row = await db.selectFrom('sandboxes').selectAll().where('id', '=', id).executeTakeFirst()
  return row ? toSandbox(row as Row) : undefined
}

export interface ListQuery {
  teamId: string
  states: SandboxState[]
  metadata?: Record<string, string>
  templateId?: string
  /** Started at or after this instant (E2B: "started at or after this timestamp"). */
  startedAfter?: number
  order: 'asc' | 'desc'
  limit: number
  cursor?: { startedAt: number; id: string }
}

/** A page of sandboxes ordered by start time (then id), and whether more follow. */
export async function listSandboxes(
  db: Db,
  q: ListQuery,
): Promise<{ items: Sandbox[]; more: boolean }> {
  let query = db
    .selectFrom('sandboxes')
    .selectAll()
    .where('team_id', '=', q.teamId)
    .where('state', 'in', q.states)
  if (q.templateId) query = query.where('template_id', '=', q.templateId)
  if (q.startedAfter !== undefined) query = query.where('started_at', '>=', q.startedAfter)
  const cursor = q.cursor
  if (cursor) {
    const cmp = q.order === 'desc' ? '<' : '>'
    query = query.where(
      (eb) =>
        eb.or([
          eb('started_at', cmp, cursor.startedAt),
          eb.and([eb('started_at', '=', cursor.startedAt), eb('id', cmp, cursor.id)]),
        ]) as Expression<SqlBool>,
    )
  }
  // Metadata is a small JSON object: filtered here rather than in SQL, so the
  // same query works on SQLite and PostgreSQL. Pages are filled by reading on.
  const want = Object.entries(q.metadata ?? {})
  const items: Sandbox[] = []
  let offset = 0
  const batch = Math.max(q.limit + 1, 100)
  for (;;) {
    const rows = await query
      .orderBy('started_at', q.order)
      .orderBy('id', q.order)
      .limit(batch)
      .offset(offset)
      .execute()
    for (const row of rows) {
      const s = toSandbox(row as Row)
      if (want.every(([k, v]) => s.metadata[k] === v)) items.push(s)
      if (items.length > q.limit) return { items: items.slice(0, q.limit), more: true }
    }
    if (rows.length < batch) return { items, more: false }
    offset += batch
  }
}

/** Deadlines of running sandboxes, for the expiry scheduler's start. */
export async function runningDeadlines(db: Db): Promise<Array<{ id: string; endAt: number }>> {
  const rows = await db
    .selectFrom('sandboxes')
    .select(['id', 'end_at'])
    .where('state', '=', 'running')
    .execute()
  return rows.map((r) => ({ id: r.id, endAt: Number(r.end_at) }))
}

/** The sandboxes of these ids that exist. */
export async function sandboxesByIds(db: Db, ids: string[]): Promise<Sandbox[]> {
  if (!ids.length) return []
  const rows = await db.selectFrom('sandboxes').selectAll().where('id', 'in', ids).execute()
  return rows.map((r) => toSandbox(r as Row))
}

/** Sandboxes in these states, on one node when `nodeId` is given. */
export async function sandboxesInStates(
  db: Db,
  states: SandboxState[],
  nodeId?: string,
): Promise<Sandbox[]> {
  let q = db.selectFrom('sandboxes').selectAll().where('state', 'in', states)
  if (nodeId !== undefined) q = q.where('node_id', '=', nodeId)
  const rows = await q.execute()
  return rows.map((r) => toSandbox(r as Row))
}
