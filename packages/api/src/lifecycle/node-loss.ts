import { getSandbox, sandboxesInStates, transition } from '../store/sandboxes.js'
import type { LifecycleCore } from './core.js'
import { finishKill } from './kill.js'
import { finishPause } from './pause.js'

/**
 * A node silent past its grace period: every running sandbox it had
 * becomes a tombstone with reason `node_lost`, and so does every paused
 * one unless the node published its snapshots to a shared snapshot store
 * (they stay paused and resume on another node; without a store their
 * snapshots are on the lost node's disk). One compare-and-set each, guarded by the
 * version read, so a sandbox an operation changed meanwhile is judged again
 * at the next pass. Sandboxes in a transitional state are left to their
 * operation, which fails against the silent node and rolls back to where
 * the next pass finds them. Returns how many were reported.
 */
export async function reportNodeLost(core: LifecycleCore, nodeId: string): Promise<number> {
  let n = 0
  const survive = core.placement.find(nodeId)?.snapshotStore === true
  const lost: Array<'running' | 'paused'> = survive ? ['running'] : ['running', 'paused']
  for (const s of await sandboxesInStates(core.db, lost, nodeId)) {
    const killed = await transition(
      core.db,
      s.sandboxId,
      { from: lost, version: s.version },
      { state: 'killed', killReason: 'node_lost', killedAt: core.clock.now() },
    )
    if (!killed) continue
    n++
    core.scheduler.cancel(s.sandboxId)
    core.catalog.update(killed)
    core.metrics.killed.inc({ reason: 'node_lost' })
    core.log.warn({ sandboxId: s.sandboxId, nodeId }, 'sandbox lost with its node')
  }
  return n
}

/**
 * A node found a sandbox's container dead (its first process exited, or
 * it was OOM-killed): if the store still has it running on that node it is
 * killed there (reason `exited`, or `oom_killed`), which also clears the
 * node's report.
 */
export async function killExited(
  core: LifecycleCore,
  nodeId: string,
  sandboxId: string,
  detail: string,
  oom: boolean,
): Promise<void> {
  const reason = oom ? 'oom_killed' : 'exited'
  const s = await getSandbox(core.db, sandboxId)
  if (s?.state !== 'running' || s.nodeId !== nodeId) return
  const killing = await transition(
    core.db,
    sandboxId,
    { from: ['running'], version: s.version },
    { state: 'killing', killReason: reason, killedAt: core.clock.now(), owner: core.replica.id },
  )
  if (!killing) return
  core.log.warn({ sandboxId, nodeId, detail }, 'sandbox exited on its own; killing it')
  await finishKill(core, killing, reason, 'running')
}

/**
 * Drains a node (already cordoned by the caller, so nothing new lands
 * there): every running sandbox on it is paused to its files (one
 * compare-and-set each, as a requested pause). Paused sandboxes resume on
 * another node (move.ts): from the shared snapshot store when the node
 * publishes to one — then the node can be stopped at once — else pulled
 * from this node, which must stay up until they have moved. Returns how
 * many were paused; one that changed state meanwhile is left (drain again).
 */
export async function drainNode(core: LifecycleCore, nodeId: string): Promise<number> {
  let n = 0
  for (const s of await sandboxesInStates(core.db, ['running'], nodeId)) {
    const pausing = await transition(
      core.db,
      s.sandboxId,
      { from: ['running'], version: s.version },
      { state: 'pausing', owner: core.replica.id, filesOnly: true },
    )
    if (!pausing) continue
    try {
      await finishPause(core, pausing, false, true)
      n++
    } catch (err) {
      core.log.warn({ err, sandboxId: s.sandboxId, nodeId }, 'drain: pause failed')
    }
  }
  return n
}
