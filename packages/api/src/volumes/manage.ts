import {
  type Logger,
  newToken,
  newVolumeId,
  tokenSha256,
  type VolumeMountRequest,
  WarrenError,
} from '@warren/shared'
import type { Clock } from '../lifecycle/clock.js'
import type { Placement } from '../placement/nodes.js'
import type { Db } from '../store/db.js'
import {
  beginVolumeDelete,
  deleteVolumeRow,
  insertVolume,
  setVolumeState,
  type Volume,
  type VolumeMountRef,
  volumesByName,
  volumesInState,
} from '../store/volumes.js'

export interface VolumeDeps {
  db: Db
  placement: Placement
  clock: Clock
  log: Logger
}

/**
 * A new volume: a `creating` row (the name taken in the same statement,
 * 409 when the team has it already), then its node makes the disk, then
 * the row is `ready`. A failure deletes the row (the node undid its part).
 */
export async function createVolume(
  deps: VolumeDeps,
  teamId: string,
  req: { name: string; sizeMb: number },
): Promise<Volume> {
  // Volumes are made in the API's own cluster (docs/architecture.md, known gaps).
  const node = deps.placement.candidates(0, undefined, { cluster: null })[0]
  if (!node) throw new WarrenError('capacity_exhausted', 'no orchestrator node is available')
  const volume: Volume = {
    volumeId: newVolumeId(),
    teamId,
    name: req.name,
    nodeId: node.nodeId,
    sizeMb: req.sizeMb,
    token: newToken(32),
    state: 'creating',
    version: 0,
    createdAt: deps.clock.now(),
  }
  if (!(await insertVolume(deps.db, volume)))
    throw new WarrenError('conflict', `a volume named '${req.name}' exists already`)
  try {
    await node.client.createVolume({
      volumeId: volume.volumeId,
      sizeMb: volume.sizeMb,
      tokenSha256: tokenSha256(volume.token),
    })
  } catch (err) {
    await deleteVolumeRow(deps.db, volume.volumeId)
    throw err
  }
  const ready = await setVolumeState(deps.db, volume.volumeId, 'creating', 'ready')
  if (!ready) throw new WarrenError('internal', `volume ${volume.volumeId} vanished while created`)
  return ready
}

/**
 * Deletes a volume: `ready → deleting` only while no live sandbox mounts it
 * (409 otherwise; see beginVolumeDelete), then its node removes the disk
 * (its own check again), then the row goes. If the node refuses or cannot
 * be reached, the volume is `ready` again and the caller hears why.
 */
export async function deleteVolume(deps: VolumeDeps, teamId: string, volumeId: string) {
  const v = await beginVolumeDelete(deps.db, teamId, volumeId)
  try {
    await removeFromNode(deps, v)
  } catch (err) {
    await setVolumeState(deps.db, volumeId, 'deleting', 'ready')
    throw err
  }
  await deleteVolumeRow(deps.db, volumeId)
}

/** The node removes the volume; one it no longer has is removed already. */
async function removeFromNode(deps: VolumeDeps, v: Volume): Promise<void> {
  try {
    await deps.placement.node(v.nodeId).client.deleteVolume({ volumeId: v.volumeId })
  } catch (err) {
    if (!(err instanceof WarrenError && err.code === 'not_found')) throw err
  }
}

/**
 * At API start: a create or delete an earlier process did not finish is
 * finished as a delete (a create nobody heard back from is not the
 * caller's volume). A node that cannot be reached keeps the row for the
 * next start.
 */
export async function recoverVolumes(deps: VolumeDeps): Promise<void> {
  for (const state of ['creating', 'deleting'] as const) {
    for (const v of await volumesInState(deps.db, state)) {
      try {
        await removeFromNode(deps, v)
        await deleteVolumeRow(deps.db, v.volumeId)
        deps.log.warn({ volumeId: v.volumeId, state }, 'interrupted volume removed')
      } catch (err) {
        deps.log.warn({ err, volumeId: v.volumeId }, 'interrupted volume: node unreachable')
      }
    }
  }
}

/**
 * A create body's mounts, by the team's ready volumes: each must exist
 * (400 otherwise) and all must be on one node, where the sandbox then goes.
 */
export async function resolveVolumeMounts(
  db: Db,
  teamId: string,
  mounts: VolumeMountRequest[],
): Promise<{ mounts: VolumeMountRef[]; nodeId: string | undefined }> {
  if (!mounts.length) return { mounts: [], nodeId: undefined }
  const found = new Map(
    (
      await volumesByName(
        db,
        teamId,
        mounts.map((m) => m.name),
      )
    ).map((v) => [v.name, v]),
  )
  const refs = mounts.map((m) => {
    const v = found.get(m.name)
    if (!v) throw new WarrenError('invalid_argument', `volumeMounts: volume '${m.name}' not found`)
    return { volumeId: v.volumeId, name: v.name, path: m.path, nodeId: v.nodeId }
  })
  const nodes = new Set(refs.map((r) => r.nodeId))
  if (nodes.size > 1)
    throw new WarrenError(
      'invalid_argument',
      'volumeMounts: the volumes are on different nodes; a sandbox can mount volumes of one node',
    )
  return {
    mounts: refs.map(({ volumeId, name, path }) => ({ volumeId, name, path })),
    nodeId: refs[0]!.nodeId,
  }
}
