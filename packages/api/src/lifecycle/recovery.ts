import { WarrenError } from '@warren/shared'
import { PausedKind } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import {
  adoptTransitional,
  getSandbox,
  type Sandbox,
  sandboxesInStates,
  transition,
} from '../store/sandboxes.js'
import { KIND, type LifecycleCore } from './core.js'
import { finishKill } from './kill.js'
import { resumeSomewhere } from './move.js'

/**
 * Settles what an API crash left halfway (one process, SQLite: at start,
 * every transitional row was the dead process's): see `settleOrphan`.
 */
export async function recoverInterrupted(core: LifecycleCore): Promise<void> {
  const { db } = core
  await adoptTransitional(db, core.replica.id)
  for (const s of await sandboxesInStates(db, ['creating', 'killing']))
    void settleOrphan(core, s).catch(() => {})
  for (const s of await sandboxesInStates(db, ['pausing', 'resuming'])) await settleOrphan(core, s)
}

/**
 * Settles a transitional row whose owner died (this process's previous
 * life, or another replica; takeover.ts): a create nobody got an answer for
 * is orphaned and killed, a kill is completed, a pause or resume takes the
 * state the node reports. Each step is a compare-and-set on the version the
 * row had when it was claimed, so a late write of the dead owner loses.
 */
export async function settleOrphan(core: LifecycleCore, s: Sandbox): Promise<void> {
  if (s.state === 'creating') {
    const killing = await transition(
      core.db,
      s.sandboxId,
      { from: ['creating'], version: s.version },
      {
        state: 'killing',
        killReason: 'orphaned',
        killedAt: core.clock.now(),
        owner: core.replica.id,
      },
    )
    if (killing) await finishKill(core, killing, 'orphaned')
  } else if (s.state === 'killing') {
    await finishKill(core, s, s.killReason ?? 'request')
  } else if (s.state === 'pausing' || s.state === 'resuming') {
    await settleInterrupted(core, s)
  }
}

/**
 * A pause or resume whose owner died: it is driven again on the node, which
 * runs one operation of a sandbox at a time — so if the dead owner's call is
 * still under way there, this one waits for it and then finds the work done
 * (a conflict) — and the row takes the state the node then reports. A
 * resume goes where a resume would (its node, or another one when that is
 * down, draining or full). A resumed sandbox gets a fresh lease; one the
 * node no longer has is killed.
 */
async function settleInterrupted(core: LifecycleCore, s: Sandbox): Promise<void> {
  const { db, catalog, clock } = core
  const sandboxId = s.sandboxId
  const done = (err: unknown) => {
    if (!(err instanceof WarrenError && err.code === 'conflict')) throw err
  }
  try {
    let nodeId = s.nodeId
    if (s.state === 'pausing')
      await core.placement
        .node(nodeId)
        .client.pause({ sandboxId, memory: !s.filesOnly })
        .catch(done)
    else {
      // Where a resume goes now: its node, or another one if that is down (move.ts).
      const resumed = await resumeSomewhere(core, s, {
        sandboxId,
        envVars: s.envVars,
        ...(s.envdAccessToken ? { envdAccessToken: s.envdAccessToken } : {}),
      }).catch(done)
      if (resumed) nodeId = resumed.nodeId
    }
    const { sandbox } = await core.placement.node(nodeId).client.get({ sandboxId })
    const paused = sandbox?.pausedKind !== PausedKind.UNSPECIFIED
    const now = clock.now()
    const settled = await transition(
      db,
      sandboxId,
      { from: [s.state], version: s.version },
      paused
        ? { state: 'paused', pausedKind: KIND[sandbox!.pausedKind], pausedAt: now, owner: null }
        : {
            state: 'running',
            nodeId,
            address: sandbox?.address ?? null,
            ...(s.state === 'resuming'
              ? { startedAt: now, endAt: now + s.timeoutS * 1000, pausedKind: null, pausedAt: null }
              : {}),
            owner: null,
          },
    )
    if (settled) {
      catalog.update(settled)
      if (settled.state === 'running') core.scheduler.schedule(settled.sandboxId, settled.endAt)
    }
  } catch (err) {
    if (!(err instanceof WarrenError && err.code === 'not_found')) throw err
    const killing = await transition(
      db,
      sandboxId,
      { from: [s.state], version: s.version },
      { state: 'killing', killReason: 'orphaned', killedAt: clock.now(), owner: core.replica.id },
    )
    if (killing) await finishKill(core, killing, 'orphaned')
  }
}

/** The node no longer has a sandbox the store has as running or paused (node sync). */
export async function markLost(
  core: LifecycleCore,
  sandboxId: string,
  version: number,
): Promise<void> {
  const killed = await transition(
    core.db,
    sandboxId,
    { from: ['running', 'paused'], version },
    { state: 'killed', killReason: 'orphaned', killedAt: core.clock.now() },
  )
  if (!killed) return
  core.scheduler.cancel(sandboxId)
  core.catalog.update(killed)
  core.metrics.killed.inc({ reason: 'orphaned' })
  core.log.warn({ sandboxId, nodeId: killed.nodeId }, 'sandbox lost by its node')
}

/**
 * A node runs a sandbox the store does not know as live, or knows as live
 * on another node (a copy left behind by a move): it goes (node sync).
 */
export async function killOrphan(
  core: LifecycleCore,
  nodeId: string,
  sandboxId: string,
): Promise<void> {
  const s = await getSandbox(core.db, sandboxId)
  // Live elsewhere (it moved, and this node kept a copy): the copy goes; a
  // move under way (resuming) is left alone, it may be fetching from here.
  const copy = s && (s.state === 'running' || s.state === 'paused') && s.nodeId !== nodeId
  if (s && s.state !== 'killed' && !copy) return
  core.log.warn({ sandboxId, nodeId }, 'killing a sandbox its node had but the store did not')
  await core.placement
    .node(nodeId)
    .client.kill({ sandboxId })
    .catch(() => {})
}
