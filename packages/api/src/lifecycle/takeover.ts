import { claimOrphaned, releaseClaim } from '../store/claims.js'
import { forgetDeadReplicas, replicasOn, unregisterReplica } from '../store/replicas.js'
import { failOrphanedBuilds } from '../store/template-builds.js'
import type { LifecycleCore } from './core.js'
import { settleOrphan } from './recovery.js'
import { hostIdentity, processAlive } from './replica.js'

export interface TakeoverOptions {
  /** A replica whose heartbeat is older than this (store time) is dead. */
  staleMs: number
  /** Between two passes. */
  intervalMs: number
}

/** Rows claimed per transaction, and transactions per pass: a pass is bounded. */
const BATCH = 50
const MAX_ROUNDS = 20

/**
 * The takeover loop of each replica (PostgreSQL): what a dead replica left
 * halfway is finished or rolled back by a live one. Each pass claims up to
 * BATCH × MAX_ROUNDS transitional rows whose owner has no fresh heartbeat
 * (`FOR UPDATE SKIP LOCKED`, so two replicas never claim the same row; the
 * claim makes the row this replica's), settles each as recovery at start
 * does (settleOrphan), fails the template builds the dead replica was
 * streaming, and forgets dead registrations. If this replica dies during a
 * pass, the rows it claimed carry its id, and the next live replica claims
 * them again: settling is idempotent (a kill of a sandbox the node no longer
 * has is a success; a settle reads the node's state).
 */
export function startTakeover(
  core: LifecycleCore,
  o: TakeoverOptions,
): { runOnce(): Promise<number>; stop(): Promise<void> } {
  let pass: Promise<number> | undefined
  let stopped = false

  const host = hostIdentity()
  const runPass = async (): Promise<number> => {
    // A replica of this host whose process is gone is dead now, whatever its
    // last heartbeat says (a `warren api` restarted after a crash).
    for (const r of await replicasOn(core.db, host, core.replica.id))
      if (!processAlive(r.pid)) await unregisterReplica(core.db, r.id)
    let settled = 0
    for (let round = 0; round < MAX_ROUNDS && !stopped; round++) {
      const claimed = await claimOrphaned(core.db, core.replica.id, o.staleMs, BATCH)
      if (claimed.length)
        core.log.warn(
          { n: claimed.length, replica: core.replica.id },
          'taking over transitional sandboxes of dead replicas',
        )
      await Promise.all(
        claimed.map((s) =>
          settleOrphan(core, s).catch(async (err) => {
            core.log.error({ err, sandboxId: s.sandboxId }, 'takeover: settling failed')
            await releaseClaim(core.db, s.sandboxId, core.replica.id).catch(() => {})
          }),
        ),
      )
      settled += claimed.length
      if (claimed.length < BATCH) break
    }
    const builds = await failOrphanedBuilds(core.db, o.staleMs, core.clock.now())
    if (builds) core.log.warn({ builds }, 'template builds of dead replicas failed')
    const dead = await forgetDeadReplicas(core.db, o.staleMs)
    if (dead.length) core.log.warn({ replicas: dead }, 'dead replicas forgotten')
    return settled
  }

  const runOnce = (): Promise<number> => {
    pass ??= runPass()
      .catch((err) => {
        core.log.warn({ err }, 'takeover pass failed')
        return 0
      })
      .finally(() => {
        pass = undefined
      })
    return pass
  }

  const timer = setInterval(() => void runOnce(), o.intervalMs)
  timer.unref()
  return {
    runOnce,
    async stop() {
      stopped = true
      clearInterval(timer)
      await pass
    },
  }
}
