import { WarrenError } from '@warren/shared'
import { PausedKind } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import { getSandbox, type Sandbox, sandboxesInStates, transition } from '../store/sandboxes.js'
import { KIND, type LifecycleCore } from './core.js'
import { finishKill } from './kill.js'

/**
 * Settles what an API crash left halfway: a create nobody got an answer for
 * is orphaned and killed, a kill is completed, a pause or resume takes the
 * state the node reports.
 */
export async function recoverInterrupted(core: LifecycleCore): Promise<void> {
  const { db } = core
  for (const s of await sandboxesInStates(db, ['creating'])) {
    const killing = await transition(
      db,
      s.sandboxId,
      { from: ['creating'] },
      { state: 'killing', killReason: 'orphaned' },
    )
    if (killing) void finishKill(core, killing, 'orphaned').catch(() => {})
  }
  for (const s of await sandboxesInStates(db, ['killing'])) {
    void finishKill(core, s, s.killReason ?? 'request').catch(() => {})
  }
  for (const s of await sandboxesInStates(db, ['pausing', 'resuming']))
    await settleInterrupted(core, s)
}

async function settleInterrupted(core: LifecycleCore, s: Sandbox): Promise<void> {
  const { db, catalog } = core
  try {
    const { sandbox } = await core.placement.node(s.nodeId).client.get({ sandboxId: s.sandboxId })
    const paused = sandbox?.pausedKind !== PausedKind.UNSPECIFIED
    const settled = await transition(
      db,
      s.sandboxId,
      { from: [s.state], version: s.version },
      paused
        ? { state: 'paused', pausedKind: KIND[sandbox!.pausedKind], pausedAt: core.clock.now() }
        : { state: 'running', address: sandbox?.address ?? null },
    )
    if (settled) catalog.update(settled)
  } catch (err) {
    if (!(err instanceof WarrenError && err.code === 'not_found')) throw err
    const killing = await transition(
      db,
      s.sandboxId,
      { from: [s.state] },
      { state: 'killing', killReason: 'orphaned' },
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

/** A node runs a sandbox the store does not know as live: it goes (node sync). */
export async function killOrphan(
  core: LifecycleCore,
  nodeId: string,
  sandboxId: string,
): Promise<void> {
  const s = await getSandbox(core.db, sandboxId)
  if (s && s.state !== 'killed') return
  core.log.warn({ sandboxId, nodeId }, 'killing a sandbox its node had but the store did not')
  await core.placement
    .node(nodeId)
    .client.kill({ sandboxId })
    .catch(() => {})
}
