import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { type Isolation, storedIsolation, WarrenError } from '@warren/shared'
import type { Db } from './db.js'
import { lockTeam } from './locks.js'

export interface Team {
  id: string
  name: string
  maxConcurrent: number
  maxLifetimeS: number
  /** Memory (MB) its active sandboxes may hold together; null: no limit. */
  maxMemoryMb: number | null
  /** Templates it may have (snapshots not counted); null: no limit. */
  maxTemplates: number | null
  /** The isolation its new sandboxes must have (and get by default); null: any. */
  requiredIsolation: Isolation | null
}

/**
 * A team's limits, as operators set them (enforced by the create and resume
 * paths, and template builds).
 */
export type TeamLimits = Pick<
  Team,
  'maxConcurrent' | 'maxLifetimeS' | 'maxMemoryMb' | 'maxTemplates' | 'requiredIsolation'
>

/** The limits a new team is given: the memory and template limits default to none. */
export type NewTeamLimits = Pick<TeamLimits, 'maxConcurrent' | 'maxLifetimeS'> & Partial<TeamLimits>

/** Who presented a key: its team, and whether the key may use the admin API. */
export interface Caller {
  team: Team
  keyId: string
  admin: boolean
}

export interface ApiKeyInfo {
  id: string
  teamId: string
  name: string
  mask: string
  createdAt: number
  lastUsedAt: number | null
  revokedAt: number | null
  admin: boolean
}

const KEY_FORMAT = /^e2b_[0-9a-f]{40}$/

function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

/** The team `warren up` and the CLI's keys belong to, with the configured limits. */
export function ensureDefaultTeam(
  db: Db,
  cfg: { maxConcurrentSandboxes: number; maxLifetimeS: number },
): Promise<Team> {
  return ensureTeam(db, 'default', {
    maxConcurrent: cfg.maxConcurrentSandboxes,
    maxLifetimeS: cfg.maxLifetimeS,
  })
}

/**
 * The team of that name, made if missing. Names are unique: of replicas
 * starting at once, one inserts and the others find its row.
 */
export async function ensureTeam(db: Db, name: string, limits: NewTeamLimits): Promise<Team> {
  await db
    .insertInto('teams')
    .values({
      id: randomUUID(),
      name,
      max_concurrent: limits.maxConcurrent,
      max_lifetime_s: limits.maxLifetimeS,
      max_memory_mb: limits.maxMemoryMb ?? null,
      max_templates: limits.maxTemplates ?? null,
      required_isolation: limits.requiredIsolation ?? null,
      created_at: Date.now(),
    })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute()
  const row = await db
    .selectFrom('teams')
    .selectAll()
    .where('name', '=', name)
    .executeTakeFirstOrThrow()
  return toTeam(row)
}

export async function getTeam(db: Db, id: string): Promise<Team | undefined> {
  const row = await db.selectFrom('teams').selectAll().where('id', '=', id).executeTakeFirst()
  return row ? toTeam(row) : undefined
}

function toTeam(row: {
  id: string
  name: string
  max_concurrent: number
  max_lifetime_s: number
  max_memory_mb: number | null
  max_templates: number | null
  required_isolation: string | null
}): Team {
  return {
    id: row.id,
    name: row.name,
    maxConcurrent: row.max_concurrent,
    maxLifetimeS: row.max_lifetime_s,
    maxMemoryMb: row.max_memory_mb,
    maxTemplates: row.max_templates,
    requiredIsolation: storedIsolation(row.required_isolation),
  }
}

/** A new key `e2b_` + 40 hex. Only its hash is stored; the key is shown once. */
export async function createApiKey(
  db: Db,
  teamId: string,
  name: string,
  opts: { admin?: boolean } = {},
): Promise<{ key: string; info: ApiKeyInfo }> {
  const key = `e2b_${randomBytes(20).toString('hex')}`
  const info: ApiKeyInfo = {
    id: randomUUID(),
    teamId,
    name,
    mask: `${key.slice(0, 8)}…${key.slice(-4)}`,
    createdAt: Date.now(),
    lastUsedAt: null,
    revokedAt: null,
    admin: opts.admin ?? false,
  }
  await db
    .insertInto('api_keys')
    .values({
      id: info.id,
      team_id: teamId,
      name,
      key_hash: hashKey(key),
      key_mask: info.mask,
      created_at: info.createdAt,
      last_used_at: null,
      revoked_at: null,
      admin: Number(info.admin),
    })
    .execute()
  return { key, info }
}

/**
 * The team's first key — the operator's, so an admin key — made only if the team has none — counted and made
 * under the team's lock, so replicas starting together make one. Undefined
 * when the team already had a key.
 */
export async function createFirstApiKey(db: Db, teamId: string): Promise<string | undefined> {
  return db.transaction().execute(async (tx) => {
    await lockTeam(tx, teamId)
    const any = await tx
      .selectFrom('api_keys')
      .select('id')
      .where('team_id', '=', teamId)
      .executeTakeFirst()
    if (any) return undefined
    return (await createApiKey(tx, teamId, 'first key', { admin: true })).key
  })
}

export async function listApiKeys(db: Db, teamId?: string): Promise<ApiKeyInfo[]> {
  let q = db.selectFrom('api_keys').selectAll().orderBy('created_at')
  if (teamId) q = q.where('team_id', '=', teamId)
  return (await q.execute()).map((r) => ({
    id: r.id,
    teamId: r.team_id,
    name: r.name,
    mask: r.key_mask,
    createdAt: Number(r.created_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    admin: r.admin === 1,
  }))
}

/**
 * Revokes a key; with `teamId`, only one of that team's (a team's own keys
 * route): another team's key is as unknown as a missing one.
 */
export async function revokeApiKey(db: Db, id: string, teamId?: string): Promise<void> {
  let q = db
    .updateTable('api_keys')
    .set({ revoked_at: Date.now() })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
  if (teamId) q = q.where('team_id', '=', teamId)
  const res = await q.executeTakeFirst()
  if (!res.numUpdatedRows) throw new WarrenError('not_found', `no active API key with id ${id}`)
}

/**
 * The team of a presented key, or unauthenticated. The lookup is by hash, and
 * the stored hash is compared again in constant time, so neither the index
 * nor the comparison reveals how much of a guess was right.
 */
export async function authenticateKey(db: Db, presented: string | undefined): Promise<Team> {
  return (await authenticateCaller(db, presented)).team
}

/** The team of a presented key and the key's rights, or unauthenticated (see authenticateKey). */
export async function authenticateCaller(db: Db, presented: string | undefined): Promise<Caller> {
  if (!presented || !KEY_FORMAT.test(presented)) {
    throw new WarrenError('unauthenticated', 'missing or malformed API key (X-API-Key: e2b_…)')
  }
  const hash = hashKey(presented)
  const row = await db
    .selectFrom('api_keys')
    .innerJoin('teams', 'teams.id', 'api_keys.team_id')
    .select([
      'api_keys.key_hash',
      'api_keys.revoked_at',
      'api_keys.id as key_id',
      'api_keys.admin',
      'teams.id',
      'teams.name',
      'teams.max_concurrent',
      'teams.max_lifetime_s',
      'teams.max_memory_mb',
      'teams.max_templates',
      'teams.required_isolation',
    ])
    .where('api_keys.key_hash', '=', hash)
    .executeTakeFirst()
  if (
    !row ||
    !timingSafeEqual(Buffer.from(row.key_hash), Buffer.from(hash)) ||
    row.revoked_at !== null
  ) {
    throw new WarrenError('unauthenticated', 'invalid API key')
  }
  return { team: toTeam(row), keyId: row.key_id, admin: row.admin === 1 }
}
