import { randomUUID } from 'node:crypto'
import { storedIsolation, WarrenError } from '@warren/shared'
import type { Db } from './db.js'
import { isUniqueViolation } from './locks.js'
import { ACTIVE_STATES } from './sandbox-row.js'
import { getTeam, type NewTeamLimits, type Team, type TeamLimits } from './teams.js'

// What operators do with teams (the admin API and `warren teams`): list them
// with what they use, make one, change its limits. The limits themselves
// are enforced where places are taken (insertCreating, the resume's
// transition), which read the team's row each time: a change applies to the
// next create on every replica.

export interface TeamSummary extends Team {
  createdAt: number
  /** Sandboxes holding a place in the team's limit (creating, running, resuming…). */
  activeSandboxes: number
  /** Memory of those sandboxes, MB. */
  activeMemoryMb: number
  activeKeys: number
}

export async function listTeams(db: Db): Promise<TeamSummary[]> {
  const teams = await db.selectFrom('teams').selectAll().orderBy('created_at').execute()
  const usage = await db
    .selectFrom('sandboxes')
    .select((eb) => [
      'team_id',
      eb.fn.countAll<number>().as('n'),
      eb.fn.sum<number>('memory_mb').as('mb'),
    ])
    .where('state', 'in', ACTIVE_STATES)
    .groupBy('team_id')
    .execute()
  const keys = await db
    .selectFrom('api_keys')
    .select((eb) => ['team_id', eb.fn.countAll<number>().as('n')])
    .where('revoked_at', 'is', null)
    .groupBy('team_id')
    .execute()
  const use = new Map(usage.map((u) => [u.team_id, u]))
  const keyCount = new Map(keys.map((k) => [k.team_id, Number(k.n)]))
  return teams.map((t) => ({
    id: t.id,
    name: t.name,
    maxConcurrent: t.max_concurrent,
    maxLifetimeS: t.max_lifetime_s,
    maxMemoryMb: t.max_memory_mb,
    maxTemplates: t.max_templates,
    requiredIsolation: storedIsolation(t.required_isolation),
    createdAt: Number(t.created_at),
    activeSandboxes: Number(use.get(t.id)?.n ?? 0),
    activeMemoryMb: Number(use.get(t.id)?.mb ?? 0),
    activeKeys: keyCount.get(t.id) ?? 0,
  }))
}

/** A new team; its name must be free (already_exists otherwise, and nothing changes). */
export async function createTeam(db: Db, name: string, limits: NewTeamLimits): Promise<Team> {
  const team: Team = {
    id: randomUUID(),
    name,
    maxMemoryMb: null,
    maxTemplates: null,
    requiredIsolation: null,
    ...limits,
  }
  try {
    await db
      .insertInto('teams')
      .values({
        id: team.id,
        name,
        max_concurrent: limits.maxConcurrent,
        max_lifetime_s: limits.maxLifetimeS,
        max_memory_mb: team.maxMemoryMb,
        max_templates: team.maxTemplates,
        required_isolation: team.requiredIsolation,
        created_at: Date.now(),
      })
      .execute()
  } catch (err) {
    if (isUniqueViolation(err)) throw new WarrenError('already_exists', `team '${name}' exists`)
    throw err
  }
  return team
}

/** A team by id or by name (what operators type). */
export async function findTeam(db: Db, idOrName: string): Promise<Team> {
  const byId = await getTeam(db, idOrName)
  if (byId) return byId
  const row = await db
    .selectFrom('teams')
    .select('id')
    .where('name', '=', idOrName)
    .executeTakeFirst()
  const team = row && (await getTeam(db, row.id))
  if (!team) throw new WarrenError('not_found', `no team '${idOrName}'`)
  return team
}

/**
 * Sets some of a team's limits in one update. Lowering a limit under what the
 * team uses kills nothing: it refuses the next create or resume until the
 * team is under it again (as the create path counts).
 */
export async function setTeamLimits(
  db: Db,
  teamId: string,
  patch: Partial<TeamLimits>,
): Promise<Team> {
  const set = {
    ...(patch.maxConcurrent !== undefined ? { max_concurrent: patch.maxConcurrent } : {}),
    ...(patch.maxLifetimeS !== undefined ? { max_lifetime_s: patch.maxLifetimeS } : {}),
    ...(patch.maxMemoryMb !== undefined ? { max_memory_mb: patch.maxMemoryMb } : {}),
    ...(patch.maxTemplates !== undefined ? { max_templates: patch.maxTemplates } : {}),
    ...(patch.requiredIsolation !== undefined
      ? { required_isolation: patch.requiredIsolation }
      : {}),
  }
  if (Object.keys(set).length) {
    const res = await db.updateTable('teams').set(set).where('id', '=', teamId).executeTakeFirst()
    if (!res.numUpdatedRows) throw new WarrenError('not_found', `no team ${teamId}`)
  }
  const team = await getTeam(db, teamId)
  if (!team) throw new WarrenError('not_found', `no team ${teamId}`)
  return team
}
