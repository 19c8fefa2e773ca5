import { WarrenError } from '@warren/shared'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Db } from './db.js'
import type { Database, VolumeState, VolumesTable } from './schema.js'

/** A volume as the control plane knows it. */
export interface Volume {
  volumeId: string
  teamId: string
  name: string
  nodeId: string
  sizeMb: number
  token: string
  state: VolumeState
  version: number
  createdAt: number
}

/** A sandbox's mount of a volume, as stored with the sandbox. */
export interface VolumeMountRef {
  volumeId: string
  name: string
  path: string
}

type Row = Omit<VolumesTable, 'version'> & { version: number }

function toVolume(r: Row): Volume {
  return {
    volumeId: r.id,
    teamId: r.team_id,
    name: r.name,
    nodeId: r.node_id,
    sizeMb: r.size_mb,
    token: r.token,
    state: r.state,
    version: Number(r.version),
    createdAt: Number(r.created_at),
  }
}

/** States of a sandbox that may still hold its volumes' mounts on its node. */
const HOLDS_MOUNTS = ['creating', 'running', 'pausing', 'paused', 'resuming', 'killing'] as const

/** Inserts a `creating` volume; false when the team already has one of that name. */
export async function insertVolume(db: Db, v: Volume): Promise<boolean> {
  const res = await db
    .insertInto('volumes')
    .values({
      id: v.volumeId,
      team_id: v.teamId,
      name: v.name,
      node_id: v.nodeId,
      size_mb: v.sizeMb,
      token: v.token,
      state: 'creating',
      created_at: v.createdAt,
    })
    .onConflict((oc) => oc.columns(['team_id', 'name']).doNothing())
    .executeTakeFirst()
  return Number(res.numInsertedOrUpdatedRows ?? 0) === 1
}

/** One compare-and-set of a volume's state; undefined when it was not in `from`. */
export async function setVolumeState(
  db: Db,
  volumeId: string,
  from: VolumeState,
  to: VolumeState,
): Promise<Volume | undefined> {
  const row = await db
    .updateTable('volumes')
    .set({ state: to, version: sql<number>`version + 1` })
    .where('id', '=', volumeId)
    .where('state', '=', from)
    .returningAll()
    .executeTakeFirst()
  return row ? toVolume(row as Row) : undefined
}

export async function deleteVolumeRow(db: Db, volumeId: string): Promise<void> {
  await db.deleteFrom('volumes').where('id', '=', volumeId).execute()
}

/** The volume with this id, whatever its team or state. */
export async function getVolume(db: Db, volumeId: string): Promise<Volume | undefined> {
  const row = await db
    .selectFrom('volumes')
    .selectAll()
    .where('id', '=', volumeId)
    .executeTakeFirst()
  return row ? toVolume(row as Row) : undefined
}

/** The team's ready volumes, oldest first. */
export async function listVolumes(db: Db, teamId: string): Promise<Volume[]> {
  const rows = await db
    .selectFrom('volumes')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('state', '=', 'ready')
    .orderBy('created_at')
    .orderBy('id')
    .execute()
  return rows.map((r) => toVolume(r as Row))
}

/** The team's ready volumes of these names. */
export async function volumesByName(db: Db, teamId: string, names: string[]): Promise<Volume[]> {
  if (!names.length) return []
  const rows = await db
    .selectFrom('volumes')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('name', 'in', names)
    .where('state', '=', 'ready')
    .execute()
  return rows.map((r) => toVolume(r as Row))
}

export async function volumesInState(db: Db, state: VolumeState): Promise<Volume[]> {
  const rows = await db.selectFrom('volumes').selectAll().where('state', '=', state).execute()
  return rows.map((r) => toVolume(r as Row))
}

/**
 * Within the transaction that inserts a sandbox: takes each volume it
 * mounts (still the team's, still ready) and records the mounts. Each
 * volume's row is written first — a write lock on it, held to the commit —
 * so a delete of the volume (which writes the same row first, see
 * `beginVolumeDelete`) is ordered entirely before or after this insert and
 * either sees the mount or is seen by it.
 */
export async function claimVolumes(
  tx: Transaction<Database>,
  teamId: string,
  sandboxId: string,
  mounts: VolumeMountRef[],
): Promise<void> {
  for (const m of mounts) {
    const taken = await tx
      .updateTable('volumes')
      .set({ version: sql<number>`version + 1` })
      .where('id', '=', m.volumeId)
      .where('team_id', '=', teamId)
      .where('state', '=', 'ready')
      .executeTakeFirst()
    if (Number(taken.numUpdatedRows) !== 1) {
      const exists = await tx
        .selectFrom('volumes')
        .select('state')
        .where('id', '=', m.volumeId)
        .executeTakeFirst()
      throw exists
        ? new WarrenError(
            'conflict',
            `volume '${m.name}' is ${exists.state === 'deleting' ? 'being deleted' : 'not ready yet'}`,
          )
        : new WarrenError('invalid_argument', `volumeMounts: volume '${m.name}' not found`)
    }
    await tx
      .insertInto('sandbox_volume_mounts')
      .values({ sandbox_id: sandboxId, volume_id: m.volumeId })
      .execute()
  }
}

/**
 * Moves a volume `ready → deleting` if no sandbox that may hold its mount
 * (anything but killed) mounts it, in one transaction: the volume's row is
 * written first (the lock a create that mounts it takes too), then the
 * mounts are counted — in a statement of their own, so under PostgreSQL's
 * read committed it sees a create that committed while this waited for the
 * lock — then the state changes or the transaction rolls back.
 */
export async function beginVolumeDelete(
  db: Kysely<Database>,
  teamId: string,
  volumeId: string,
): Promise<Volume> {
  return db.transaction().execute(async (tx) => {
    const locked = await tx
      .updateTable('volumes')
      .set({ version: sql<number>`version + 1` })
      .where('id', '=', volumeId)
      .where('team_id', '=', teamId)
      .where('state', '=', 'ready')
      .returningAll()
      .executeTakeFirst()
    if (!locked) {
      const v = await tx
        .selectFrom('volumes')
        .select('state')
        .where('id', '=', volumeId)
        .where('team_id', '=', teamId)
        .executeTakeFirst()
      throw v
        ? new WarrenError('conflict', `volume ${volumeId} is ${v.state}`)
        : new WarrenError('not_found', `volume ${volumeId} not found`)
    }
    const user = await tx
      .selectFrom('sandbox_volume_mounts as m')
      .innerJoin('sandboxes as s', 's.id', 'm.sandbox_id')
      .select('s.id')
      .where('m.volume_id', '=', volumeId)
      .where('s.state', 'in', [...HOLDS_MOUNTS])
      .executeTakeFirst()
    if (user)
      throw new WarrenError(
        'conflict',
        `volume ${volumeId} is mounted by sandbox ${user.id}; kill it first`,
      )
    const deleting = await tx
      .updateTable('volumes')
      .set({ state: 'deleting', version: sql<number>`version + 1` })
      .where('id', '=', volumeId)
      .returningAll()
      .executeTakeFirstOrThrow()
    return toVolume(deleting as Row)
  })
}
