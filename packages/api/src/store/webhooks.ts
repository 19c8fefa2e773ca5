import { randomUUID } from 'node:crypto'
import { WarrenError } from '@warren/shared'
import { sql } from 'kysely'
import type { EventKind } from '../events/kinds.js'
import type { Db } from './db.js'
import { lockTeam } from './locks.js'
import type { DeliveryState } from './schema.js'

/** Webhooks a team may have: each event is delivered once per webhook. */
export const MAX_WEBHOOKS_PER_TEAM = 20

export interface Webhook {
  id: string
  teamId: string
  url: string
  kinds: EventKind[]
  createdAt: number
}

export interface WebhookWithSecret extends Webhook {
  secret: string
}

type WebhookRow = {
  id: string
  team_id: string
  url: string
  secret: string
  kinds: string
  created_at: number
}

function toWebhook(r: WebhookRow): WebhookWithSecret {
  return {
    id: r.id,
    teamId: r.team_id,
    url: r.url,
    secret: r.secret,
    kinds: JSON.parse(r.kinds),
    createdAt: Number(r.created_at),
  }
}

/** Registers a webhook, under the team's limit (counted and inserted under the team's lock). */
export async function createWebhook(
  db: Db,
  w: { teamId: string; url: string; secret: string; kinds: EventKind[]; createdAt: number },
): Promise<Webhook> {
  const id = randomUUID()
  await db.transaction().execute(async (tx) => {
    await lockTeam(tx, w.teamId)
    const { n } = await tx
      .selectFrom('webhooks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('team_id', '=', w.teamId)
      .executeTakeFirstOrThrow()
    if (Number(n) >= MAX_WEBHOOKS_PER_TEAM)
      throw new WarrenError(
        'limit_exceeded',
        `a team has at most ${MAX_WEBHOOKS_PER_TEAM} webhooks; delete one first`,
      )
    await tx
      .insertInto('webhooks')
      .values({
        id,
        team_id: w.teamId,
        url: w.url,
        secret: w.secret,
        kinds: JSON.stringify(w.kinds),
        created_at: w.createdAt,
      })
      .execute()
  })
  return { id, teamId: w.teamId, url: w.url, kinds: w.kinds, createdAt: w.createdAt }
}

export async function listWebhooks(db: Db, teamId: string): Promise<Webhook[]> {
  const rows = await db
    .selectFrom('webhooks')
    .selectAll()
    .where('team_id', '=', teamId)
    .orderBy('created_at')
    .execute()
  return rows.map((r) => withoutSecret(toWebhook(r)))
}

/** The team's webhook; another team's is unknown (undefined), as a missing one. */
export async function getWebhook(
  db: Db,
  teamId: string,
  id: string,
): Promise<WebhookWithSecret | undefined> {
  const r = await db
    .selectFrom('webhooks')
    .selectAll()
    .where('id', '=', id)
    .where('team_id', '=', teamId)
    .executeTakeFirst()
  return r ? toWebhook(r) : undefined
}

/** Removes the webhook and its deliveries (pending ones are not sent). */
export async function deleteWebhook(db: Db, teamId: string, id: string): Promise<boolean> {
  const res = await db
    .deleteFrom('webhooks')
    .where('id', '=', id)
    .where('team_id', '=', teamId)
    .executeTakeFirst()
  return Number(res.numDeletedRows) > 0
}

export function withoutSecret(w: WebhookWithSecret): Webhook {
  const { secret: _, ...rest } = w
  return rest
}

export interface Delivery {
  id: number
  webhookId: string
  eventId: string
  sandboxId: string
  payload: string
  state: DeliveryState
  attempts: number
  nextAt: number
  lastStatus: number | null
  lastError: string | null
  createdAt: number
  finishedAt: number | null
}

type DeliveryRow = {
  id: number
  webhook_id: string
  event_id: string
  sandbox_id: string
  payload: string
  state: DeliveryState
  attempts: number
  next_at: number
  last_status: number | null
  last_error: string | null
  created_at: number
  finished_at: number | null
}

function toDelivery(r: DeliveryRow): Delivery {
  return {
    id: Number(r.id),
    webhookId: r.webhook_id,
    eventId: r.event_id,
    sandboxId: r.sandbox_id,
    payload: r.payload,
    state: r.state,
    attempts: Number(r.attempts),
    nextAt: Number(r.next_at),
    lastStatus: r.last_status,
    lastError: r.last_error,
    createdAt: Number(r.created_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
  }
}

/** A webhook's most recent deliveries, newest first. */
export async function listDeliveries(db: Db, webhookId: string, limit: number) {
  const rows = await db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('webhook_id', '=', webhookId)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute()
  return rows.map((r) => toDelivery(r as DeliveryRow))
}

/**
 * Deliveries that may be attempted now: pending, due, not claimed by a live
 * claim, and first of their (webhook, sandbox) queue — no earlier delivery
 * of the same sandbox to the same webhook is still pending (a sandbox's
 * deliveries are numbered in the order of its events: store/events.ts).
 */
export async function dueDeliveries(db: Db, now: number, limit: number): Promise<number[]> {
  const rows = await db
    .selectFrom('webhook_deliveries as d')
    .select('d.id')
    .where('d.state', '=', 'pending')
    .where('d.next_at', '<=', now)
    .where((eb) => eb.or([eb('d.claimed_until', 'is', null), eb('d.claimed_until', '<', now)]))
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('webhook_deliveries as e')
            .select('e.id')
            .whereRef('e.webhook_id', '=', 'd.webhook_id')
            .whereRef('e.sandbox_id', '=', 'd.sandbox_id')
            .where('e.state', '=', 'pending')
            .whereRef('e.id', '<', 'd.id'),
        ),
      ),
    )
    .orderBy('d.next_at')
    .orderBy('d.id')
    .limit(limit)
    .execute()
  return rows.map((r) => Number(r.id))
}

/**
 * Claims a delivery for `owner` until `until` (one compare-and-set: of two
 * replicas claiming it, one wins) and counts the attempt. A claim that runs
 * out (its replica died mid-delivery) makes the delivery due again.
 */
export async function claimDelivery(
  db: Db,
  id: number,
  owner: string,
  now: number,
  until: number,
): Promise<(Delivery & { url: string; secret: string }) | undefined> {
  const claimed = await db
    .updateTable('webhook_deliveries')
    .set({ claimed_by: owner, claimed_until: until, attempts: sql<number>`attempts + 1` })
    .where('id', '=', id)
    .where('state', '=', 'pending')
    .where('next_at', '<=', now)
    .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
    .returningAll()
    .executeTakeFirst()
  if (!claimed) return undefined
  const hook = await db
    .selectFrom('webhooks')
    .select(['url', 'secret'])
    .where('id', '=', claimed.webhook_id)
    .executeTakeFirst()
  if (!hook) return undefined // deleted meanwhile: its deliveries went with it
  return { ...toDelivery(claimed as DeliveryRow), ...hook }
}

/** Settles an attempt; only the claim's holder may (a lost claim changes nothing). */
export async function settleDelivery(
  db: Db,
  id: number,
  owner: string,
  outcome:
    | { state: 'delivered' | 'failed'; at: number; status: number | null; error: string | null }
    | { state: 'pending'; nextAt: number; status: number | null; error: string | null },
): Promise<boolean> {
  const res = await db
    .updateTable('webhook_deliveries')
    .set({
      state: outcome.state,
      claimed_by: null,
      claimed_until: null,
      last_status: outcome.status,
      last_error: outcome.error,
      ...(outcome.state === 'pending' ? { next_at: outcome.nextAt } : { finished_at: outcome.at }),
    })
    .where('id', '=', id)
    .where('claimed_by', '=', owner)
    .where('state', '=', 'pending')
    .executeTakeFirst()
  return Number(res.numUpdatedRows) > 0
}

/** Forgets up to `limit` finished deliveries older than `before`. */
export async function purgeDeliveries(db: Db, before: number, limit = 1000): Promise<number> {
  const old = await db
    .selectFrom('webhook_deliveries')
    .select('id')
    .where('state', 'in', ['delivered', 'failed'])
    .where('finished_at', '<', before)
    .limit(limit)
    .execute()
  if (!old.length) return 0
  const res = await db
    .deleteFrom('webhook_deliveries')
    .where(
      'id',
      'in',
      old.map((r) => r.id),
    )
    .executeTakeFirst()
  return Number(res.numDeletedRows)
}
