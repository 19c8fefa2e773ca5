import { PausedKind } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import { type Sandbox, transition } from '../store/sandboxes.js'
import { KIND, type LifecycleCore, lostRace, RETRY_MS } from './core.js'

/**
 * Second half of a pause (requested, or at endAt): the node freezes the
 * sandbox (or drops it to files), or the sandbox runs on as before and the
 * error goes to the caller; a failed expiry pause is tried again later.
 */
export function finishPause(
  core: LifecycleCore,
  s: Sandbox,
  memory: boolean,
  requested: boolean,
): Promise<Sandbox> {
  return core.metrics.timed('pause', () => pauseOnNode(core, s, memory, requested))
}

async function pauseOnNode(
  core: LifecycleCore,
  s: Sandbox,
  memory: boolean,
  requested: boolean,
): Promise<Sandbox> {
  const { db, catalog, scheduler, clock } = core
  // Writes require this replica to still own the row (takeover.ts).
  const owner = core.replica.id
  scheduler.cancel(s.sandboxId)
  catalog.update(s)
  let kind: 'memory' | 'files'
  try {
    const res = await core.placement.node(s.nodeId).client.pause({ sandboxId: s.sandboxId, memory })
    kind = KIND[res.sandbox?.pausedKind ?? PausedKind.UNSPECIFIED] ?? (memory ? 'memory' : 'files')
  } catch (err) {
    const back = await transition(
      db,
      s.sandboxId,
      { from: ['pausing'], owner },
      { state: 'running', owner: null },
    )
    if (back) {
      catalog.update(back)
      if (requested) scheduler.schedule(back.sandboxId, back.endAt)
      else await scheduler.retry(back, Math.max(back.endAt, clock.now() + RETRY_MS))
    }
    throw err
  }
  const paused = await transition(
    db,
    s.sandboxId,
    { from: ['pausing'], owner },
    {
      state: 'paused',
      pausedKind: kind,
      pausedAt: clock.now(),
      filesOnly: !memory,
      address: null,
      owner: null,
    },
  )
  if (!paused) throw await lostRace(db, s.sandboxId)
  catalog.update(paused)
  core.metrics.paused.inc({ kind })
  return paused
}
