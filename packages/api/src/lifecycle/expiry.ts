import { getSandbox, type Sandbox, transition } from '../store/sandboxes.js'
import type { LifecycleCore } from './core.js'
import { finishKill } from './kill.js'
import { finishPause } from './pause.js'

/**
 * Called by the deadline heap at a sandbox's deadline (SQLite). The expiry
 * only applies if the lease has really run out in the store: an extension
 * that committed first wins, and the sandbox is rescheduled at its new
 * deadline. The sandbox is then killed, or paused if its lifecycle says so.
 * (With PostgreSQL the poller claims due rows instead: expiry-poller.ts.)
 */
export async function expireAtDeadline(core: LifecycleCore, sandboxId: string): Promise<void> {
  const { db, clock } = core
  const now = clock.now()
  const s = await getSandbox(db, sandboxId)
  if (s?.state !== 'running') return
  const owner = core.replica.id
  const next = await transition(
    db,
    sandboxId,
    { from: ['running'], version: s.version, endAtAtMost: now },
    s.lifecycle.onTimeout === 'pause'
      ? { state: 'pausing', owner, filesOnly: !s.lifecycle.autoPauseMemory }
      : { state: 'killing', killReason: 'timeout', killedAt: now, owner },
  )
  if (!next) {
    const current = await getSandbox(db, sandboxId)
    if (current?.state === 'running') core.scheduler.schedule(sandboxId, current.endAt)
    return
  }
  core.metrics.expiryLateness.observe((now - s.endAt) / 1000)
  await finishExpiry(core, next)
}

/** The node's half of an expiry whose row is already `killing` or `pausing` (and this replica's). */
export async function finishExpiry(core: LifecycleCore, s: Sandbox): Promise<void> {
  if (s.state === 'pausing') await finishPause(core, s, s.lifecycle.autoPauseMemory, false)
  else await finishKill(core, s, 'timeout', 'running')
}
