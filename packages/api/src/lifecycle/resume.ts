import { setTimeout as sleep } from 'node:timers/promises'
import { SingleFlight, WarrenError } from '@warren/shared'
import {
  countActive,
  getSandbox,
  type Sandbox,
  teamLimitReached,
  teamMemoryReached,
  transition,
} from '../store/sandboxes.js'
import { isLive, KIND, type LifecycleCore, lostRace } from './core.js'
import { endAfter } from './lease.js'
import { resumeSomewhere } from './move.js'

export interface ResumeOptions {
  /** Lease after the resume, in seconds. */
  timeoutS: number
  /** false: boot from the files even when processes are frozen. */
  memory?: boolean | undefined
  trigger: 'api' | 'traffic'
}

/** A resume by traffic gets at least this lease. */
const MIN_AUTO_RESUME_S = 300
/** How long a caller waits for another one's pause or resume to settle. */
const SETTLE_WAIT_MS = 60_000

/**
 * Resumes paused sandboxes. Concurrent callers of one sandbox (API and
 * traffic alike) share one resume and all get its outcome; a sandbox another
 * caller is pausing or resuming is waited for first.
 */
export class Resumes {
  private readonly inflight = new SingleFlight<Sandbox>()

  constructor(private readonly core: LifecycleCore) {}

  resume(s: Sandbox, opts: ResumeOptions): Promise<Sandbox> {
    return this.inflight.run(s.sandboxId, () =>
      this.core.metrics.timed('resume', () => this.once(s.sandboxId, opts)),
    )
  }

  /**
   * A resume requested by traffic at the proxy (already authorised there).
   * Traffic may arrive while the sandbox is still pausing (its lease ran out
   * a moment ago, or a pause is under way): the pause is let finish, then the
   * sandbox is judged as paused — so a files-only pause is not undone.
   */
  async forTraffic(sandboxId: string): Promise<Sandbox> {
    const s = await this.settled(sandboxId)
    if (!isLive(s)) {
      throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    }
    if (s.state === 'running') return s
    if (!s.lifecycle.autoResume) {
      throw new WarrenError('conflict', `sandbox ${sandboxId} is paused and auto-resume is off`)
    }
    if (s.filesOnly) {
      throw new WarrenError(
        'conflict',
        `sandbox ${sandboxId} was paused without memory; resume it explicitly (connect)`,
      )
    }
    return this.resume(s, { timeoutS: Math.max(s.timeoutS, MIN_AUTO_RESUME_S), trigger: 'traffic' })
  }

  private async once(sandboxId: string, opts: ResumeOptions): Promise<Sandbox> {
    const { db, catalog } = this.core
    const s = await this.settled(sandboxId)
    if (s.state === 'running') return s
    if (s.state !== 'paused') throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    // A paused sandbox gave up its place in the team's limit; resuming takes one again.
    const team = await this.core.team(s.teamId)
    const resuming = await transition(
      db,
      sandboxId,
      {
        from: ['paused'],
        version: s.version,
        activeBelow: {
          teamId: s.teamId,
          max: team.maxConcurrent,
          maxMemoryMb: team.maxMemoryMb,
          memoryMb: s.memoryMb,
        },
      },
      { state: 'resuming', owner: this.core.replica.id },
    )
    if (!resuming) {
      const now = await getSandbox(db, sandboxId)
      if (now?.state === 'paused' && now.version === s.version)
        throw team.maxMemoryMb !== null && (await countActive(db, s.teamId)) < team.maxConcurrent
          ? teamMemoryReached(team.maxMemoryMb, s.memoryMb)
          : teamLimitReached(team.maxConcurrent)
      // Another replica's resume won: its outcome is this caller's too.
      if (now?.state === 'resuming') {
        const after = await this.settled(sandboxId)
        if (after.state === 'running') return after
      }
      throw await lostRace(db, sandboxId)
    }
    const owner = this.core.replica.id
    catalog.update(resuming)
    let from: 'memory' | 'files'
    let address: string
    let nodeId: string
    try {
      // Its own node, or another one when that is down, draining or full (move.ts).
      const { res, nodeId: on } = await resumeSomewhere(this.core, s, {
        sandboxId,
        envVars: s.envVars,
        ...(s.envdAccessToken ? { envdAccessToken: s.envdAccessToken } : {}),
        ...(opts.memory !== undefined ? { memory: opts.memory } : {}),
      })
      from = KIND[res.resumedFrom] ?? 'memory'
      address = res.sandbox?.address ?? ''
      nodeId = on
    } catch (err) {
      const back = await transition(
        db,
        sandboxId,
        { from: ['resuming'], owner },
        { state: 'paused', owner: null },
      )
      if (back) catalog.update(back)
      throw err
    }
    const startedAt = this.core.clock.now()
    const running = await transition(
      db,
      sandboxId,
      { from: ['resuming'], owner },
      {
        state: 'running',
        owner: null,
        nodeId,
        startedAt,
        endAt: endAfter(startedAt, opts.timeoutS, { startedAt, maxLifetimeS: team.maxLifetimeS }),
        address,
        resumedFrom: from,
        pausedKind: null,
        pausedAt: null,
        filesOnly: false,
      },
    )
    if (!running) throw await lostRace(db, sandboxId)
    this.core.scheduler.schedule(sandboxId, running.endAt)
    catalog.update(running)
    this.core.metrics.resumed.inc({ from, trigger: opts.trigger })
    return running
  }

  /** The sandbox once no other caller is pausing or resuming it. */
  private async settled(sandboxId: string): Promise<Sandbox> {
    const { clock } = this.core
    const deadline = clock.now() + SETTLE_WAIT_MS
    for (;;) {
      const s = await getSandbox(this.core.db, sandboxId)
      if (!s) throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
      if (s.state !== 'pausing' && s.state !== 'resuming') return s
      if (clock.now() > deadline)
        throw new WarrenError('unavailable', `sandbox ${sandboxId} is still ${s.state}`)
      await sleep(50)
    }
  }
}
