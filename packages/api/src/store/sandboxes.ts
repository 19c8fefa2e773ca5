import { type NetworkConfig, networkConfigSchema, WarrenError } from '@warren/shared'
import { type Expression, type SqlBool, sql } from 'kysely'
import type { Db } from './db.js'
import { lockTeam } from './locks.js'
import type { KillReason, PausedKind, SandboxesTable, SandboxState } from './schema.js'

export interface Lifecycle {
  onTimeout: 'kill' | 'pause'
  autoResume: boolean
  /** A timeout pause keeps the processes (true) or only the files. */
  autoPauseMemory: boolean
  keepaliveTraffic: boolean
}

/** A sandbox as the control plane knows it. */
export interface Sandbox {
  sandboxId: string
  teamId: string
  templateId: string
  nodeId: string
  state: SandboxState
  version: number
  createdAt: number
  startedAt: number
  endAt: number
  timeoutS: number
  metadata: Record<string, string>
  envVars: Record<string, string>
  envdVersion: string
  envdAccessToken: string | null
  trafficAccessToken: string | null
  cpuCount: number
  memoryMb: number
  diskSizeMb: number
  lifecycle: Lifecycle
  network: NetworkConfig
  allowInternetAccess: boolean | null
  address: string | null
  killReason: KillReason | null
  killedAt: number | null
  pausedKind: PausedKind | null
  pausedAt: number | null
  /** Paused with memory: false on request: only an explicit resume may wake it. */
  filesOnly: boolean
  /** How the last resume went: frozen processes continued, or a boot on the files. */
  resumedFrom: PausedKind | null
  /** The replica finishing a transitional state; null when the sandbox is settled. */
  owner: string | null
}

/** States that hold a node's resources and count against the team's limit. */
export const ACTIVE_STATES: SandboxState[] = ['creating', 'running', 'pausing', 'resuming']

export type Row = Omit<SandboxesTable, 'version'> & { version: number }

export function toSandbox(r: Row): Sandbox {
  return {
    sandboxId: r.id,
    teamId: r.team_id,
    templateId: r.template_id,
    nodeId: r.node_id,
    state: r.state,
    version: Number(r.version),
    createdAt: Number(r.created_at),
    startedAt: Number(r.started_at),
    endAt: Number(r.end_at),
    timeoutS: r.timeout_s,
    metadata: JSON.parse(r.metadata),
    envVars: JSON.parse(r.env_vars),
    envdVersion: r.envd_version,
    envdAccessToken: r.envd_access_token,
    trafficAccessToken: r.traffic_access_token,
    cpuCount: r.cpu_count,
    memoryMb: r.memory_mb,
    diskSizeMb: r.disk_size_mb,
    lifecycle: JSON.parse(r.lifecycle),
    network: networkConfigSchema.parse(JSON.parse(r.network)),
    allowInternetAccess: r.allow_internet_access === null ? null : !!r.allow_internet_access,
    address: r.address,
    killReason: r.kill_reason,
    killedAt: r.killed_at === null ? null : Number(r.killed_at),
    pausedKind: r.paused_kind,
    pausedAt: r.paused_at === null ? null : Number(r.paused_at),
    filesOnly: !!r.files_only,
    resumedFrom: r.resumed_from,
    owner: r.owner,
  }
}

/** The columns a transition may set, in the model's terms. */
export type SandboxPatch = Partial<
  Pick<
    Sandbox,
    | 'state'
    | 'nodeId'
    | 'startedAt'
    | 'endAt'
    | 'timeoutS'
    | 'envdVersion'
    | 'cpuCount'
    | 'memoryMb'
    | 'diskSizeMb'
    | 'address'
    | 'killReason'
    | 'killedAt'
    | 'network'
    | 'lifecycle'
    | 'pausedKind'
    | 'pausedAt'
    | 'filesOnly'
    | 'resumedFrom'
    | 'allowInternetAccess'
    | 'owner'
  >
>

export function toColumns(p: SandboxPatch): Partial<SandboxesTable> {
  const c: Partial<SandboxesTable> = {}
  if (p.state !== undefined) c.state = p.state
  if (p.nodeId !== undefined) c.node_id = p.nodeId
  if (p.startedAt !== undefined) c.started_at = p.startedAt
  if (p.endAt !== undefined) c.end_at = p.endAt
  if (p.timeoutS !== undefined) c.timeout_s = p.timeoutS
  if (p.envdVersion !== undefined) c.envd_version = p.envdVersion
  if (p.cpuCount !== undefined) c.cpu_count = p.cpuCount
  if (p.memoryMb !== undefined) c.memory_mb = p.memoryMb
  if (p.diskSizeMb !== undefined) c.disk_size_mb = p.diskSizeMb
  if (p.address !== undefined) c.address = p.address
  if (p.killReason !== undefined) c.kill_reason = p.killReason
  if (p.killedAt !== undefined) c.killed_at = p.killedAt
  if (p.network !== undefined) c.network = JSON.stringify(p.network)
  if (p.lifecycle !== undefined) c.lifecycle = JSON.stringify(p.lifecycle)
  if (p.pausedKind !== undefined) c.paused_kind = p.pausedKind
  if (p.pausedAt !== undefined) c.paused_at = p.pausedAt
  if (p.filesOnly !== undefined) c.files_only = Number(p.filesOnly)
  if (p.resumedFrom !== undefined) c.resumed_from = p.resumedFrom
  if (p.owner !== undefined) c.owner = p.owner
  if (p.allowInternetAccess !== undefined) {
    c.allow_internet_access = p.allowInternetAccess === null ? null : Number(p.allowInternetAccess)
  }
  return c
}

export function teamLimitReached(maxConcurrent: number): WarrenError {
  return new WarrenError(
    'limit_exceeded',
    `team limit of ${maxConcurrent} concurrent sandboxes reached; kill or pause one first`,
  )
}

/**
 * Inserts a sandbox in state `creating` (owned by the creating replica) if
 * the team is under its limit of active sandboxes. The count and the insert
 * run in one transaction that holds the team's row (PostgreSQL; SQLite
 * serializes writers), so concurrent creates on any replicas cannot both
 * take the last place.
 */
export async function insertCreating(db: Db, s: Sandbox, maxConcurrent: number): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await lockTeam(tx, s.teamId)
    const { n } = await tx
      .selectFrom('sandboxes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('team_id', '=', s.teamId)
      .where('state', 'in', ACTIVE_STATES)
      .executeTakeFirstOrThrow()
    if (Number(n) >= maxConcurrent) throw teamLimitReached(maxConcurrent)
    await tx
      .insertInto('sandboxes')
      .values({
        id: s.sandboxId,
        team_id: s.teamId,
        template_id: s.templateId,
        node_id: s.nodeId,
        state: 'creating',
        created_at: s.createdAt,
        started_at: s.startedAt,
        end_at: s.endAt,
        timeout_s: s.timeoutS,
        metadata: JSON.stringify(s.metadata),
        env_vars: JSON.stringify(s.envVars),
        envd_version: s.envdVersion,
        envd_access_token: s.envdAccessToken,
        traffic_access_token: s.trafficAccessToken,
        cpu_count: s.cpuCount,
        memory_mb: s.memoryMb,
        disk_size_mb: s.diskSizeMb,
        lifecycle: JSON.stringify(s.lifecycle),
        network: JSON.stringify(s.network),
        allow_internet_access:
          s.allowInternetAccess === null ? null : Number(s.allowInternetAccess),
        address: s.address,
        kill_reason: null,
        killed_at: null,
        paused_kind: null,
        paused_at: null,
        files_only: 0,
        resumed_from: null,
        owner: s.owner,
      })
      .execute()
  })
}

export async function getSandbox(db: Db, id: string): Promise<Sandbox | undefined> {
  const row = await db.selectFrom('sandboxes').selectAll().where('id', '=', id).executeTakeFirst()
  return row ? toSandbox(row as Row) : undefined
}

export interface TransitionGuard {
  from: SandboxState[]
  /** Only if nobody changed the sandbox since this version was read. */
  version?: number
  /** Only if the lease has run out by then (expiry must lose to an extension). */
  endAtAtMost?: number
  /** Only if the team's other active sandboxes are fewer than `max` (a resume takes a place). */
  activeBelow?: { teamId: string; max: number }
  /** Only if this replica still owns the transitional state (none took it over). */
  owner?: string
}

/**
 * One atomic compare-and-set: the update applies only if the sandbox is in
 * one of `from` (and matches the optional guards); returns the new state, or
 * undefined when the guard did not hold — the caller lost the race.
 */
export async function transition(
  db: Db,
  id: string,
  guard: TransitionGuard,
  patch: SandboxPatch,
): Promise<Sandbox | undefined> {
  const limit = guard.activeBelow
  if (!limit) return compareAndSet(db, id, guard, patch)
  // The team's row is held while the place is counted and taken, as in a create.
  return db.transaction().execute(async (tx) => {
    await lockTeam(tx, limit.teamId)
    return compareAndSet(tx, id, guard, patch)
  })
}

async function compareAndSet(
  db: Db,
  id: string,
  guard: TransitionGuard,
  patch: SandboxPatch,
): Promise<Sandbox | undefined> {
  let q = db
    .updateTable('sandboxes')
    .set({ ...toColumns(patch), version: sql<number>`version + 1` })
    .where('id', '=', id)
    .where('state', 'in', guard.from)
  if (guard.version !== undefined) q = q.where('version', '=', guard.version)
  if (guard.endAtAtMost !== undefined) q = q.where('end_at', '<=', guard.endAtAtMost)
  if (guard.owner !== undefined) q = q.where('owner', '=', guard.owner)
  const limit = guard.activeBelow
  if (limit) {
    // Counted in the same statement as the update, under the team's lock, so
    // two racing resumes (or a resume and a create) cannot both take the
    // last place.
    q = q.where(
      (eb) =>
        eb
          .selectFrom('sandboxes as other')
          .select((o) => o.fn.countAll<number>().as('n'))
          .where('other.team_id', '=', limit.teamId)
          .where('other.state', 'in', ACTIVE_STATES)
          .where('other.id', '!=', id),
      '<',
      limit.max,
    )
  }
  const row = await q.returningAll().executeTakeFirst()
  return row ? toSandbox(row as Row) : undefined
}

/** Extends the lease without ever shortening it, in one statement. */
export async function extendLease(db: Db, id: string, endAt: number): Promise<Sandbox | undefined> {
  const row = await db
    .updateTable('sandboxes')
    .set({
      end_at: sql<number>`case when end_at > ${endAt} then end_at else ${endAt} end`,
      version: sql<number>`version + 1`,
    })
    .where('id', '=', id)
    .where('state', '=', 'running')
    .returningAll()
    .executeTakeFirst()
  return row ? toSandbox(row as Row) : undefined
}

/** Removes a failed create's row, unless another replica took it over meanwhile. */
export async function deleteSandbox(db: Db, id: string, owner: string): Promise<void> {
  await db
    .deleteFrom('sandboxes')
    .where('id', '=', id)
    .where('state', '=', 'creating')
    .where('owner', '=', owner)
    .execute()
}

/**
 * Makes every transitional row `owner`'s (one process, SQLite, at start: they
 * were all the previous process's), so that recovery can finish them.
 */
export async function adoptTransitional(db: Db, owner: string): Promise<void> {
  await db
    .updateTable('sandboxes')
    .set({ owner, version: sql<number>`version + 1` })
    .where('state', 'in', ['creating', 'pausing', 'resuming', 'killing'])
    .execute()
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

/**
 * Forgets up to `limit` tombstones killed before `before` and returns their
 * ids, so that the routing catalog can forget them too. `killed` is final, so
 * nothing can revive a row between the read and the delete.
 */
export async function purgeTombstones(db: Db, before: number, limit = 1000): Promise<string[]> {
  const rows = await db
    .selectFrom('sandboxes')
    .select('id')
    .where('state', '=', 'killed')
    .where('killed_at', '<', before)
    .orderBy('killed_at')
    .limit(limit)
    .execute()
  if (!rows.length) return []
  // Only what this delete removed is reported (another replica may purge too).
  const gone = await db
    .deleteFrom('sandboxes')
    .where(
      'id',
      'in',
      rows.map((r) => r.id),
    )
    .where('state', '=', 'killed')
    .returning('id')
    .execute()
  return gone.map((r) => r.id)
}
