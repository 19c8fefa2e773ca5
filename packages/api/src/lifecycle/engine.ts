import { setTimeout as sleep } from 'node:timers/promises'
import { type Logger, newSandboxId, newToken, WarrenError } from '@warren/shared'
import { PausedKind } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { Catalog } from '../catalog/catalog.js'
import type { NodeState, Placement } from '../placement/nodes.js'
import type { Db } from '../store/db.js'
import {
  deleteSandbox,
  extendLease,
  getSandbox,
  insertCreating,
  type Lifecycle,
  runningDeadlines,
  type Sandbox,
  sandboxesInStates,
  transition,
} from '../store/sandboxes.js'
import type { KillReason } from '../store/schema.js'
import { getTeam, type Team } from '../store/teams.js'
import { endAfter, extendedEnd, type LeaseLimits } from './lease.js'
import { LifecycleMetrics } from './metrics.js'
import { ExpiryScheduler } from './scheduler.js'

export interface CreateSandboxRequest {
  templateId: string
  timeoutS: number
  metadata: Record<string, string>
  envVars: Record<string, string>
  /** Secure sandboxes get an envd access token that every envd call must carry. */
  secure: boolean
  lifecycle: Lifecycle
  network: Record<string, unknown>
  allowInternetAccess: boolean | null
}

export interface LifecycleDeps {
  db: Db
  placement: Placement
  catalog: Catalog
  log: Logger
  maxConcurrentExpiries: number
}

export interface ResumeOptions {
  /** Lease after the resume, in seconds. */
  timeoutS: number
  /** false: boot from the files even when processes are frozen. */
  memory?: boolean | undefined
  trigger: 'api' | 'traffic'
}

/** How soon a failed expiry (unreachable node) is retried. */
const RETRY_MS = 5000
/** A resume by traffic gets at least this lease. */
const MIN_AUTO_RESUME_S = 300
/** How long a caller waits for another one's pause or resume to settle. */
const SETTLE_WAIT_MS = 60_000

const KIND: Record<PausedKind, 'memory' | 'files' | null> = {
  [PausedKind.UNSPECIFIED]: null,
  [PausedKind.MEMORY]: 'memory',
  [PausedKind.FILES]: 'files',
}

/**
 * The sandbox state machine. Every change is one compare-and-set in the store
 * (see store/sandboxes.ts `transition`): of two racing calls one wins and the
 * other gets 409 (conflict) or 404 (gone), never a half-applied change. Each
 * two-step change (kill, pause, resume) moves through a transitional state
 * first and either completes or rolls back to where it started.
 */
export class LifecycleEngine {
  readonly scheduler: ExpiryScheduler
  readonly metrics = new LifecycleMetrics()
  private readonly db: Db
  private readonly placement: Placement
  private readonly catalog: Catalog
  private readonly log: Logger
  private readonly resumes = new Map<string, Promise<Sandbox>>()
  private readonly teams = new Map<string, Team>()
  private readonly networkUpdates = new Map<string, Promise<unknown>>()

  constructor(deps: LifecycleDeps) {
    this.db = deps.db
    this.placement = deps.placement
    this.catalog = deps.catalog
    this.log = deps.log
    this.scheduler = new ExpiryScheduler((id, at) => this.expire(id, at), {
      concurrency: deps.maxConcurrentExpiries,
      log: deps.log,
    })
  }

  /**
   * Loads deadlines and the catalog, and settles what an API crash left
   * halfway: a create nobody got an answer for is orphaned and killed, a kill
   * is completed, a pause or resume takes the state the node reports.
   */
  async start(): Promise<void> {
    for (const s of await sandboxesInStates(this.db, ['running', 'paused', 'killed']))
      this.catalog.update(s)
    for (const s of await sandboxesInStates(this.db, ['creating'])) {
      const killing = await transition(
        this.db,
        s.sandboxId,
        { from: ['creating'] },
        { state: 'killing', killReason: 'orphaned' },
      )
      if (killing) void this.finishKill(killing, 'orphaned').catch(() => {})
    }
    for (const s of await sandboxesInStates(this.db, ['killing'])) {
      void this.finishKill(s, s.killReason ?? 'request').catch(() => {})
    }
    for (const s of await sandboxesInStates(this.db, ['pausing', 'resuming']))
      await this.settleInterrupted(s)
    for (const { id, endAt } of await runningDeadlines(this.db)) this.scheduler.schedule(id, endAt)
  }

  async stop(): Promise<void> {
    await this.scheduler.stop()
  }

  async create(team: Team, req: CreateSandboxRequest): Promise<Sandbox> {
    const candidates = this.placement.candidates(0)
    if (!candidates.length)
      throw new WarrenError('capacity_exhausted', 'no orchestrator node is available')
    const now = Date.now()
    const sandbox: Sandbox = {
      sandboxId: newSandboxId(),
      teamId: team.id,
      templateId: req.templateId,
      nodeId: candidates[0]!.nodeId,
      state: 'creating',
      version: 0,
      createdAt: now,
      startedAt: now,
      endAt: now + req.timeoutS * 1000,
      timeoutS: req.timeoutS,
      metadata: req.metadata,
      envVars: req.envVars,
      envdVersion: '',
      envdAccessToken: req.secure ? newToken() : null,
      trafficAccessToken: req.network.allowPublicTraffic === false ? newToken() : null,
      cpuCount: 0,
      memoryMb: 0,
      diskSizeMb: 0,
      lifecycle: req.lifecycle,
      network: req.network,
      allowInternetAccess: req.allowInternetAccess,
      address: null,
      killReason: null,
      killedAt: null,
      pausedKind: null,
      pausedAt: null,
      filesOnly: false,
      resumedFrom: null,
    }
    await insertCreating(this.db, sandbox, team.maxConcurrent)
    let lastError: unknown
    for (const node of candidates) {
      try {
        const created = await this.createOn(node, sandbox, team)
        this.scheduler.schedule(created.sandboxId, created.endAt)
        this.catalog.update(created)
        this.metrics.created.inc()
        return created
      } catch (err) {
        lastError = err
        // Another node may have room; any other failure is final.
        if (!(err instanceof WarrenError && err.code === 'capacity_exhausted')) break
      }
    }
    await deleteSandbox(this.db, sandbox.sandboxId)
    throw lastError
  }

  private async createOn(node: NodeState, s: Sandbox, team: Team): Promise<Sandbox> {
    if (node.nodeId !== s.nodeId)
      await transition(this.db, s.sandboxId, { from: ['creating'] }, { nodeId: node.nodeId })
    const res = await node.client.create({
      sandboxId: s.sandboxId,
      templateId: s.templateId,
      envVars: s.envVars,
      ...(s.envdAccessToken ? { envdAccessToken: s.envdAccessToken } : {}),
      networkJson: JSON.stringify(s.network),
      ...(s.allowInternetAccess !== null ? { allowInternetAccess: s.allowInternetAccess } : {}),
    })
    void this.placement.refresh(node)
    const info = res.sandbox!
    const startedAt = Date.now()
    const running = await transition(
      this.db,
      s.sandboxId,
      { from: ['creating'] },
      {
        state: 'running',
        nodeId: node.nodeId,
        startedAt,
        endAt: endAfter(startedAt, s.timeoutS, { startedAt, maxLifetimeS: team.maxLifetimeS }),
        envdVersion: info.envdVersion,
        cpuCount: info.cpuCount,
        memoryMb: info.memoryMb,
        diskSizeMb: info.diskSizeMb,
        address: info.address,
      },
    )
    if (!running) {
      await node.client.kill({ sandboxId: s.sandboxId }).catch(() => {})
      throw new WarrenError('internal', `sandbox ${s.sandboxId} vanished while it was created`)
    }
    return running
  }

  /** The team's sandbox in any live state; another team's or a killed one is a plain 404. */
  async get(team: Team, sandboxId: string): Promise<Sandbox> {
    const s = await getSandbox(this.db, sandboxId)
    if (
      !s ||
      s.teamId !== team.id ||
      s.state === 'killed' ||
      s.state === 'killing' ||
      s.state === 'creating'
    ) {
      throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    }
    return s
  }

  /**
   * The sandbox as GET shows it. A paused sandbox's snapshot kind is asked of
   * its node: the node may have dropped frozen processes to files since (its
   * memory policy, or processes lost) without the API hearing of it.
   */
  async describe(team: Team, sandboxId: string): Promise<Sandbox> {
    const s = await this.get(team, sandboxId)
    if (s.state !== 'paused' || s.pausedKind !== 'memory') return s
    try {
      const { sandbox } = await this.placement.node(s.nodeId).client.get({ sandboxId })
      const kind = KIND[sandbox?.pausedKind ?? PausedKind.UNSPECIFIED]
      if (kind !== 'files') return s
      return (
        (await transition(
          this.db,
          sandboxId,
          { from: ['paused'], version: s.version },
          { pausedKind: 'files' },
        )) ?? s
      )
    } catch {
      return s // the node is unreachable: what the store knows
    }
  }

  async kill(team: Team, sandboxId: string): Promise<void> {
    const s = await this.get(team, sandboxId)
    if (s.state !== 'running' && s.state !== 'paused') {
      throw new WarrenError(
        'conflict',
        `sandbox ${sandboxId} is ${s.state}; try again when it settles`,
      )
    }
    const killing = await transition(
      this.db,
      sandboxId,
      { from: [s.state], version: s.version },
      { state: 'killing', killReason: 'request' },
    )
    if (!killing) throw await this.lostRace(sandboxId)
    await this.finishKill(killing, 'request', s.state)
  }

  /**
   * Second half of every kill: the node removes the sandbox (and its
   * snapshot), then the record becomes a tombstone. If the node cannot be
   * reached the sandbox is still there: the record goes back to `previous`
   * (when known) and the caller gets 503; an expiry is retried a little later.
   */
  private async finishKill(
    s: Sandbox,
    reason: KillReason,
    previous?: 'running' | 'paused',
  ): Promise<void> {
    this.scheduler.cancel(s.sandboxId)
    this.catalog.update(s)
    try {
      await this.placement.node(s.nodeId).client.kill({ sandboxId: s.sandboxId })
    } catch (err) {
      const code = err instanceof WarrenError ? err.code : 'internal'
      if (code === 'unavailable' && previous) {
        const back = await transition(
          this.db,
          s.sandboxId,
          { from: ['killing'] },
          { state: previous, killReason: null },
        )
        if (back) {
          this.catalog.update(back)
          if (back.state === 'running')
            this.scheduler.schedule(back.sandboxId, Math.max(back.endAt, Date.now() + RETRY_MS))
        }
        throw new WarrenError(
          'unavailable',
          `node ${s.nodeId} is unreachable; sandbox ${s.sandboxId} was not killed`,
        )
      }
      // not_found: the node no longer has it. Anything else: the node removed
      // its entry and left any debris to its own reconciliation.
      if (code !== 'not_found')
        this.log.error(
          { err, sandboxId: s.sandboxId },
          'node kill failed; marking the sandbox killed',
        )
    }
    const killed = await transition(
      this.db,
      s.sandboxId,
      { from: ['killing'] },
      { state: 'killed', killReason: reason, killedAt: Date.now() },
    )
    if (killed) {
      this.catalog.update(killed)
      this.metrics.killed.inc({ reason })
    }
    void this.placement.refresh(this.placement.node(s.nodeId)).catch(() => {})
  }

  /** `endAt = now + timeout` (may shorten; 0 expires now). */
  async setTimeout(team: Team, sandboxId: string, timeoutS: number): Promise<Sandbox> {
    const s = await this.running(team, sandboxId)
    const endAt = endAfter(Date.now(), timeoutS, this.limits(s, team))
    const updated = await transition(
      this.db,
      sandboxId,
      { from: ['running'], version: s.version },
      { endAt },
    )
    if (!updated) throw await this.lostRace(sandboxId)
    this.scheduler.schedule(sandboxId, updated.endAt)
    return updated
  }

  /** Extends only: the lease becomes at least now + duration. */
  async refresh(team: Team, sandboxId: string, durationS: number): Promise<Sandbox> {
    return this.extend(await this.running(team, sandboxId), team, durationS)
  }

  /** Running: extends (never shortens) and answers 200; paused: resumes (201). */
  async connect(
    team: Team,
    sandboxId: string,
    timeoutS: number,
    memory?: boolean,
  ): Promise<{ sandbox: Sandbox; resumed: boolean }> {
    const s = await this.get(team, sandboxId)
    if (s.state === 'running')
      return { sandbox: await this.extend(s, team, timeoutS), resumed: false }
    return { sandbox: await this.resume(s, { timeoutS, memory, trigger: 'api' }), resumed: true }
  }

  /**
   * Replaces the network config of a running sandbox: the node applies it
   * first (atomically, or not at all), then the record follows, so the two
   * never disagree; updates of one sandbox run one at a time.
   */
  async updateNetwork(
    team: Team,
    sandboxId: string,
    network: Record<string, unknown>,
    allowInternetAccess: boolean | null,
  ): Promise<Sandbox> {
    const previous = this.networkUpdates.get(sandboxId) ?? Promise.resolve()
    const run = previous
      .catch(() => {})
      .then(async () => {
        const s = await this.running(team, sandboxId)
        const client = this.placement.node(s.nodeId).client
        const apply = (net: Record<string, unknown>, iae: boolean | null) =>
          client.updateNetwork({
            sandboxId,
            networkJson: JSON.stringify(net),
            ...(iae !== null ? { allowInternetAccess: iae } : {}),
          })
        await apply(network, allowInternetAccess)
        try {
          const updated = await transition(
            this.db,
            sandboxId,
            { from: ['running', 'pausing', 'paused', 'resuming'] },
            { network, allowInternetAccess },
          )
          if (!updated) throw await this.lostRace(sandboxId)
          this.catalog.update(updated)
          return updated
        } catch (err) {
          // The record could not follow: put the node back to what the record says.
          await apply(s.network, s.allowInternetAccess).catch((e) =>
            this.log.error({ err: e, sandboxId }, 'network rollback on the node failed'),
          )
          throw err
        }
      })
    const tail = run.catch(() => {})
    this.networkUpdates.set(sandboxId, tail)
    void tail.then(() => {
      if (this.networkUpdates.get(sandboxId) === tail) this.networkUpdates.delete(sandboxId)
    })
    return run
  }

  /** Traffic for a sandbox with keepalive: the lease becomes at least now + its timeout. */
  async keepAlive(sandboxId: string): Promise<void> {
    this.metrics.keepaliveCalls.inc()
    const s = await getSandbox(this.db, sandboxId)
    if (!s || s.state !== 'running' || !s.lifecycle.keepaliveTraffic) return
    const team = await this.team(s.teamId)
    const target = extendedEnd(s.endAt, Date.now(), s.timeoutS, this.limits(s, team))
    if (target <= s.endAt) return
    const updated = await extendLease(this.db, sandboxId, target)
    if (updated) {
      this.scheduler.schedule(sandboxId, updated.endAt)
      this.metrics.keepaliveExtensions.inc()
    }
  }

  private async extend(s: Sandbox, team: Team, durationS: number): Promise<Sandbox> {
    const updated = await extendLease(
      this.db,
      s.sandboxId,
      extendedEnd(s.endAt, Date.now(), durationS, this.limits(s, team)),
    )
    if (!updated) throw await this.lostRace(s.sandboxId)
    this.scheduler.schedule(s.sandboxId, updated.endAt)
    return updated
  }

  async pause(team: Team, sandboxId: string, memory: boolean): Promise<Sandbox> {
    const s = await this.get(team, sandboxId)
    if (s.state !== 'running') {
      throw new WarrenError(
        'conflict',
        s.state === 'paused'
          ? `sandbox ${sandboxId} is already paused`
          : `sandbox ${sandboxId} is ${s.state}`,
      )
    }
    const pausing = await transition(
      this.db,
      sandboxId,
      { from: ['running'], version: s.version },
      { state: 'pausing' },
    )
    if (!pausing) throw await this.lostRace(sandboxId)
    return this.finishPause(pausing, memory, true)
  }

  /** Second half of a pause: the node freezes (or drops to files), or the sandbox runs on. */
  private async finishPause(s: Sandbox, memory: boolean, requested: boolean): Promise<Sandbox> {
    this.scheduler.cancel(s.sandboxId)
    this.catalog.update(s)
    let kind: 'memory' | 'files'
    try {
      const res = await this.placement
        .node(s.nodeId)
        .client.pause({ sandboxId: s.sandboxId, memory })
      kind =
        KIND[res.sandbox?.pausedKind ?? PausedKind.UNSPECIFIED] ?? (memory ? 'memory' : 'files')
    } catch (err) {
      const back = await transition(
        this.db,
        s.sandboxId,
        { from: ['pausing'] },
        { state: 'running' },
      )
      if (back) {
        this.catalog.update(back)
        this.scheduler.schedule(
          back.sandboxId,
          requested ? back.endAt : Math.max(back.endAt, Date.now() + RETRY_MS),
        )
      }
      throw err
    }
    const paused = await transition(
      this.db,
      s.sandboxId,
      { from: ['pausing'] },
      {
        state: 'paused',
        pausedKind: kind,
        pausedAt: Date.now(),
        filesOnly: !memory,
        address: null,
      },
    )
    if (!paused) throw await this.lostRace(s.sandboxId)
    this.catalog.update(paused)
    this.metrics.paused.inc({ kind })
    return paused
  }

  /**
   * Resumes a paused sandbox; concurrent callers (API and traffic alike) share
   * one resume and all get its outcome. A sandbox that another caller is
   * pausing or resuming is waited for first.
   */
  resume(s: Sandbox, opts: ResumeOptions): Promise<Sandbox> {
    let inflight = this.resumes.get(s.sandboxId)
    if (!inflight) {
      inflight = this.resumeOnce(s.sandboxId, opts).finally(() => this.resumes.delete(s.sandboxId))
      this.resumes.set(s.sandboxId, inflight)
    }
    return inflight
  }

  /** A resume requested by traffic at the proxy (already authorised there). */
  async resumeForTraffic(sandboxId: string): Promise<Sandbox> {
    const s = await getSandbox(this.db, sandboxId)
    if (!s || s.state === 'killed' || s.state === 'killing' || s.state === 'creating') {
      throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    }
    if (s.state === 'running') return s
    if (!s.lifecycle.autoResume)
      throw new WarrenError('conflict', `sandbox ${sandboxId} is paused and auto-resume is off`)
    if (s.filesOnly) {
      throw new WarrenError(
        'conflict',
        `sandbox ${sandboxId} was paused without memory; resume it explicitly (connect)`,
      )
    }
    return this.resume(s, { timeoutS: Math.max(s.timeoutS, MIN_AUTO_RESUME_S), trigger: 'traffic' })
  }

  private async resumeOnce(sandboxId: string, opts: ResumeOptions): Promise<Sandbox> {
    const s = await this.settled(sandboxId)
    if (s.state === 'running') return s
    if (s.state !== 'paused') throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    // A paused sandbox gave up its place in the team's limit; resuming takes one again.
    const max = (await this.team(s.teamId)).maxConcurrent
    const resuming = await transition(
      this.db,
      sandboxId,
      { from: ['paused'], version: s.version, activeBelow: { teamId: s.teamId, max } },
      { state: 'resuming' },
    )
    if (!resuming) {
      const now = await getSandbox(this.db, sandboxId)
      if (now?.state === 'paused' && now.version === s.version) {
        throw new WarrenError(
          'limit_exceeded',
          `team limit of ${max} concurrent sandboxes reached; kill or pause one first`,
        )
      }
      throw await this.lostRace(sandboxId)
    }
    this.catalog.update(resuming)
    let from: 'memory' | 'files'
    let address: string
    try {
      const res = await this.placement.node(s.nodeId).client.resume({
        sandboxId,
        envVars: s.envVars,
        ...(s.envdAccessToken ? { envdAccessToken: s.envdAccessToken } : {}),
        ...(opts.memory !== undefined ? { memory: opts.memory } : {}),
      })
      from = KIND[res.resumedFrom] ?? 'memory'
      address = res.sandbox?.address ?? ''
    } catch (err) {
      const back = await transition(this.db, sandboxId, { from: ['resuming'] }, { state: 'paused' })
      if (back) this.catalog.update(back)
      throw err
    }
    const team = await this.team(s.teamId)
    const startedAt = Date.now()
    const running = await transition(
      this.db,
      sandboxId,
      { from: ['resuming'] },
      {
        state: 'running',
        startedAt,
        endAt: endAfter(startedAt, opts.timeoutS, { startedAt, maxLifetimeS: team.maxLifetimeS }),
        address,
        resumedFrom: from,
        pausedKind: null,
        pausedAt: null,
        filesOnly: false,
      },
    )
    if (!running) throw await this.lostRace(sandboxId)
    this.scheduler.schedule(sandboxId, running.endAt)
    this.catalog.update(running)
    this.metrics.resumed.inc({ from, trigger: opts.trigger })
    return running
  }

  /** The sandbox once no other caller is pausing or resuming it. */
  private async settled(sandboxId: string): Promise<Sandbox> {
    const deadline = Date.now() + SETTLE_WAIT_MS
    for (;;) {
      const s = await getSandbox(this.db, sandboxId)
      if (!s) throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
      if (s.state !== 'pausing' && s.state !== 'resuming') return s
      if (Date.now() > deadline)
        throw new WarrenError('unavailable', `sandbox ${sandboxId} is still ${s.state}`)
      await sleep(50)
    }
  }

  /**
   * Called by the scheduler at a deadline. The expiry only applies if the
   * lease has really run out in the store: an extension that committed first
   * wins, and the sandbox is rescheduled at its new deadline. The sandbox is
   * then killed, or paused if its lifecycle says so.
   */
  async expire(sandboxId: string, _at: number): Promise<void> {
    const now = Date.now()
    const s = await getSandbox(this.db, sandboxId)
    if (!s || s.state !== 'running') return
    const pause = s.lifecycle.onTimeout === 'pause'
    const next = await transition(
      this.db,
      sandboxId,
      { from: ['running'], version: s.version, endAtAtMost: now },
      pause ? { state: 'pausing' } : { state: 'killing', killReason: 'timeout' },
    )
    if (!next) {
      const current = await getSandbox(this.db, sandboxId)
      if (current?.state === 'running') this.scheduler.schedule(sandboxId, current.endAt)
      return
    }
    if (pause) await this.finishPause(next, s.lifecycle.autoPauseMemory, false)
    else await this.finishKill(next, 'timeout', 'running')
  }

  /** The node no longer has a sandbox the store has as running or paused. */
  async markLost(sandboxId: string, version: number): Promise<void> {
    const killed = await transition(
      this.db,
      sandboxId,
      { from: ['running', 'paused'], version },
      { state: 'killed', killReason: 'orphaned', killedAt: Date.now() },
    )
    if (!killed) return
    this.scheduler.cancel(sandboxId)
    this.catalog.update(killed)
    this.metrics.killed.inc({ reason: 'orphaned' })
    this.log.warn({ sandboxId, nodeId: killed.nodeId }, 'sandbox lost by its node')
  }

  /** A node runs a sandbox the store does not know as live: it goes. */
  async killOrphan(nodeId: string, sandboxId: string): Promise<void> {
    const s = await getSandbox(this.db, sandboxId)
    if (s && s.state !== 'killed') return
    this.log.warn({ sandboxId, nodeId }, 'killing a sandbox its node had but the store did not')
    await this.placement
      .node(nodeId)
      .client.kill({ sandboxId })
      .catch(() => {})
  }

  /** After an API crash: a pausing or resuming sandbox takes the state its node reports. */
  private async settleInterrupted(s: Sandbox): Promise<void> {
    try {
      const { sandbox } = await this.placement.node(s.nodeId).client.get({ sandboxId: s.sandboxId })
      const paused = sandbox?.pausedKind !== PausedKind.UNSPECIFIED
      const settled = await transition(
        this.db,
        s.sandboxId,
        { from: [s.state], version: s.version },
        paused
          ? { state: 'paused', pausedKind: KIND[sandbox!.pausedKind], pausedAt: Date.now() }
          : { state: 'running', address: sandbox?.address ?? null },
      )
      if (settled) this.catalog.update(settled)
    } catch (err) {
      if (!(err instanceof WarrenError && err.code === 'not_found')) throw err
      const killing = await transition(
        this.db,
        s.sandboxId,
        { from: [s.state] },
        { state: 'killing', killReason: 'orphaned' },
      )
      if (killing) await this.finishKill(killing, 'orphaned')
    }
  }

  private async running(team: Team, sandboxId: string): Promise<Sandbox> {
    const s = await this.get(team, sandboxId)
    if (s.state !== 'running')
      throw new WarrenError('conflict', `sandbox ${sandboxId} is ${s.state}`)
    return s
  }

  private async team(teamId: string): Promise<Team> {
    let team = this.teams.get(teamId)
    if (!team) {
      team = await getTeam(this.db, teamId)
      if (!team) throw new WarrenError('internal', `team ${teamId} is missing`)
      this.teams.set(teamId, team)
    }
    return team
  }

  private limits(s: Sandbox, team: Team): LeaseLimits {
    return { startedAt: s.startedAt, maxLifetimeS: team.maxLifetimeS }
  }

  /** The error for a compare-and-set that lost: 404 if the sandbox is gone, else 409. */
  private async lostRace(sandboxId: string): Promise<WarrenError> {
    const s = await getSandbox(this.db, sandboxId)
    if (!s || s.state === 'killed' || s.state === 'killing') {
      return new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    }
    return new WarrenError(
      'conflict',
      `sandbox ${sandboxId} was changed by a concurrent request (now ${s.state}); retry`,
    )
  }
}
