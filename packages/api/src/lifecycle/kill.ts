import { WarrenError } from '@warren/shared'
import { type Sandbox, transition } from '../store/sandboxes.js'
import type { KillReason } from '../store/schema.js'
import { type LifecycleCore, RETRY_MS } from './core.js'

/**
 * Second half of every kill: the node removes the sandbox (and its
 * snapshot), then the record becomes a tombstone. If the node cannot be
 * reached the sandbox is still there: the record goes back to `previous`
 * (when known) and the caller gets 503; an expiry is retried a little later.
 * Both writes require this replica to still own the row: if it was taken
 * for dead meanwhile, the replica that took the row over finishes it.
 */
export function finishKill(
  core: LifecycleCore,
  s: Sandbox,
  reason: KillReason,
  previous?: 'running' | 'paused',
): Promise<void> {
  return core.metrics.timed('kill', () => killOnNode(core, s, reason, previous))
}

async function killOnNode(
  core: LifecycleCore,
  s: Sandbox,
  reason: KillReason,
  previous?: 'running' | 'paused',
): Promise<void> {
  const { db, catalog, scheduler, placement, log, clock } = core
  const owner = core.replica.id
  scheduler.cancel(s.sandboxId)
  catalog.update(s)
  try {
    await placement.node(s.nodeId).client.kill({ sandboxId: s.sandboxId })
  } catch (err) {
    const code = err instanceof WarrenError ? err.code : 'internal'
    if (code === 'unavailable' && previous) {
      const back = await transition(
        db,
        s.sandboxId,
        { from: ['killing'], owner },
        { state: previous, killReason: null, killedAt: null, owner: null },
      )
      if (back) {
        catalog.update(back)
        if (back.state === 'running')
          await scheduler.retry(back, Math.max(back.endAt, clock.now() + RETRY_MS))
      }
      throw new WarrenError(
        'unavailable',
        `node ${s.nodeId} is unreachable; sandbox ${s.sandboxId} was not killed`,
      )
    }
    // not_found: the node no longer has it. Anything else: the node removed
    // its entry and left any debris to its own reconciliation.
    if (code !== 'not_found')
      log.error({ err, sandboxId: s.sandboxId }, 'node kill failed; marking the sandbox killed')
  }
  // killedAt is when the kill was decided (the expiry, the request), if known.
  const killed = await transition(
    db,
    s.sandboxId,
    { from: ['killing'], owner },
    { state: 'killed', killReason: reason, killedAt: s.killedAt ?? clock.now(), owner: null },
  )
  if (killed) {
    catalog.update(killed)
    core.metrics.killed.inc({ reason })
  }
  // refresh catches its own errors (it marks the node unhealthy).
  void placement.refresh(placement.node(s.nodeId))
}
