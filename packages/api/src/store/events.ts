import { WarrenError } from '@warren/shared'
import { type Kysely, sql } from 'kysely'
import { type EventKind, eventData } from '../events/kinds.js'
import { isPostgres } from './db.js'
import type { Sandbox } from './sandbox-row.js'
import type { Database } from './schema.js'

/** Where an event stands in the log: ordered by `tx`, then `id` (migrations-events.ts). */
export interface Position {
  tx: number
  id: number
}

/** The log's start: every event comes after it. */
export const START: Position = { tx: 0, id: 0 }

/** A lifecycle event as the stream and webhooks carry it. */
export interface LifecycleEvent {
  /** Its position, `<tx>-<id>`: opaque to clients, increasing along the log. */
  id: string
  kind: EventKind
  sandboxId: string
  teamId: string
  templateId: string
  /** When the change was made (ISO 8601). */
  at: string
  metadata: Record<string, string>
  data: Record<string, unknown>
}

export function formatPosition(p: Position): string {
  return `${p.tx}-${p.id}`
}

/** A client's `Last-Event-ID` or `after`; anything else is a 400. */
export function parsePosition(v: string): Position {
  const m = /^(\d{1,15})-(\d{1,15})$/.exec(v)
  if (!m) throw new WarrenError('invalid_argument', `'${v}' is not an event id`)
  return { tx: Number(m[1]), id: Number(m[2]) }
}

/**
 * Records one event of `s` in the transaction `tx` that made the change,
 * and a delivery for each of its team's webhooks that wants the kind: the
 * change, its event and their deliveries commit together or not at all.
 * The sandbox's row is locked by the change, so a sandbox's events (and
 * deliveries) are inserted, and numbered, in the order of its changes.
 */
export async function recordEvent(
  tx: Kysely<Database>,
  s: Sandbox,
  kind: EventKind,
  at: number,
): Promise<void> {
  const body = {
    kind,
    sandboxId: s.sandboxId,
    teamId: s.teamId,
    templateId: s.templateId,
    at: new Date(at).toISOString(),
    metadata: s.metadata,
    data: eventData(kind, s),
  }
  const row = await tx
    .insertInto('events')
    .values({
      team_id: s.teamId,
      sandbox_id: s.sandboxId,
      kind,
      at,
      data: JSON.stringify(body),
    })
    .returning(['id', 'tx'])
    .executeTakeFirstOrThrow()
  const hooks = await tx
    .selectFrom('webhooks')
    .select(['id', 'kinds'])
    .where('team_id', '=', s.teamId)
    .execute()
  const wanted = hooks.filter((h) => (JSON.parse(h.kinds) as string[]).includes(kind))
  if (!wanted.length) return
  const eventId = formatPosition({ tx: Number(row.tx), id: Number(row.id) })
  const payload = JSON.stringify({ id: eventId, ...body })
  await tx
    .insertInto('webhook_deliveries')
    .values(
      wanted.map((h) => ({
        webhook_id: h.id,
        event_id: eventId,
        sandbox_id: s.sandboxId,
        payload,
        state: 'pending' as const,
        next_at: at,
        created_at: at,
      })),
    )
    .execute()
}

/**
 * On PostgreSQL, only events of transactions older than every transaction
 * still running are read: a younger event may yet be joined by an older
 * one that commits later, and a reader that went past it would skip that
 * one for good. SQLite commits one writer at a time: no horizon.
 */
function belowHorizon(db: Kysely<Database>) {
  return isPostgres(db)
    ? sql<boolean>`tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint`
    : sql<boolean>`1 = 1`
}

const after = (p: Position) => sql<boolean>`(tx > ${p.tx} or (tx = ${p.tx} and id > ${p.id}))`

export interface EventQuery {
  teamId: string
  after: Position
  sandboxId?: string | undefined
  kinds?: readonly EventKind[] | undefined
  limit: number
}

/** A team's events after a position, in log order; none are ever skipped. */
export async function readEvents(
  db: Kysely<Database>,
  q: EventQuery,
): Promise<Array<LifecycleEvent & { position: Position }>> {
  let query = db
    .selectFrom('events')
    .select(['id', 'tx', 'data'])
    .where('team_id', '=', q.teamId)
    .where(after(q.after))
    .where(belowHorizon(db))
  if (q.sandboxId !== undefined) query = query.where('sandbox_id', '=', q.sandboxId)
  if (q.kinds?.length) query = query.where('kind', 'in', q.kinds)
  const rows = await query.orderBy('tx').orderBy('id').limit(q.limit).execute()
  return rows.map((r) => {
    const position = { tx: Number(r.tx), id: Number(r.id) }
    return { id: formatPosition(position), ...JSON.parse(r.data), position }
  })
}

/**
 * The position after which new events will come: the last readable one's
 * (of the team, or of everyone). An event not readable yet has a `tx` at or
 * above today's horizon, so it still comes after this.
 */
export async function lastPosition(db: Kysely<Database>, teamId?: string): Promise<Position> {
  let q = db.selectFrom('events').select(['tx', 'id']).where(belowHorizon(db))
  if (teamId !== undefined) q = q.where('team_id', '=', teamId)
  const row = await q.orderBy('tx', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst()
  return row ? { tx: Number(row.tx), id: Number(row.id) } : START
}

/** Which teams have events after `p` (readable now), and the last position read. */
export async function teamsWithEventsAfter(
  db: Kysely<Database>,
  p: Position,
  limit = 1000,
): Promise<{ teams: Set<string>; last: Position }> {
  const rows = await db
    .selectFrom('events')
    .select(['tx', 'id', 'team_id'])
    .where(after(p))
    .where(belowHorizon(db))
    .orderBy('tx')
    .orderBy('id')
    .limit(limit)
    .execute()
  const lastRow = rows.at(-1)
  return {
    teams: new Set(rows.map((r) => r.team_id)),
    last: lastRow ? { tx: Number(lastRow.tx), id: Number(lastRow.id) } : p,
  }
}

/** Forgets up to `limit` events older than `before`; returns how many went. */
export async function purgeEvents(
  db: Kysely<Database>,
  before: number,
  limit = 1000,
): Promise<number> {
  const old = await db
    .selectFrom('events')
    .select('id')
    .where('at', '<', before)
    .orderBy('at')
    .limit(limit)
    .execute()
  if (!old.length) return 0
  const gone = await db
    .deleteFrom('events')
    .where(
      'id',
      'in',
      old.map((r) => r.id),
    )
    .executeTakeFirst()
  return Number(gone.numDeletedRows)
}

/**
 * Hints to this process's readers (the event stream, webhook deliveries)
 * that an event committed here, so they need not wait for their next poll.
 * Only a hint: what they read, they read from the store.
 */
const listeners = new WeakMap<object, Set<() => void>>()

export function onEventsAnnounced(db: object, fn: () => void): () => void {
  const set = listeners.get(db) ?? new Set()
  listeners.set(db, set)
  set.add(fn)
  return () => set.delete(fn)
}

export function announceEvents(db: object): void {
  for (const fn of listeners.get(db) ?? []) fn()
}
