import { type Logger, newSandboxId, newToken, WarrenError } from '@warren/shared'
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
import type { Team } from '../store/teams.js'
import { endAfter, extendedEnd, type LeaseLimits } from './lease.js'
import { ExpiryScheduler } from './scheduler.js'

/** How soon an expiry is retried when the node could not be reached. */
const RETRY_MS = 5000

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

/**
 * The sandbox state machine. Every change is one compare-and-set in the store
 * (see store/sandboxes.ts `transition`): of two racing calls one wins and the
 * other gets 409 (conflict) or 404 (gone), never a half-applied change.
 */
export class LifecycleEngine {
  readonly scheduler: ExpiryScheduler
  private readonly db: Db
  private readonly placement: Placement
  private readonly catalog: Catalog
  private readonly log: Logger

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
   * Loads deadlines and the catalog, and finishes what an API crash left
   * halfway: a create nobody got an answer for is orphaned and killed; a
   * kill is completed.
   */
  async start(): Promise<void> {
    for (const s of await sandboxesInStates(this.db, [
      'running',
      'paused',
      'pausing',
      'resuming',
      'killed',
    ])) {
      this.catalog.update(s)
    }
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
    }
    await insertCreating(this.db, sandbox, team.maxConcurrent)
    let lastError: unknown
    for (const node of candidates) {
      try {
        const created = await this.createOn(node, sandbox, team)
        this.scheduler.schedule(created.sandboxId, created.endAt)
        this.catalog.update(created)
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
    if (node.nodeId !== s.nodeId) {
      await transition(this.db, s.sandboxId, { from: ['creating'] }, { nodeId: node.nodeId })
    }
    const res = await node.client.create({
      sandboxId: s.sandboxId,
      templateId: s.templateId,
      envVars: s.envVars,
      ...(s.envdAccessToken ? { envdAccessToken: s.envdAccessToken } : {}),
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
   * Second half of every kill: the node removes the sandbox, then the record
   * becomes a tombstone. If the node cannot be reached the sandbox still runs
   * there: the record goes back to `previous` (when known) and the caller
   * gets 503; an expiry is retried a little later.
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
    if (killed) this.catalog.update(killed)
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
    const s = await this.running(team, sandboxId)
    return this.extend(s, team, durationS)
  }

  /** Running: extends (never shortens) and answers 200; paused: resumes (201). */
  async connect(
    team: Team,
    sandboxId: string,
    timeoutS: number,
  ): Promise<{ sandbox: Sandbox; resumed: boolean }> {
    const s = await this.get(team, sandboxId)
    if (s.state === 'running')
      return { sandbox: await this.extend(s, team, timeoutS), resumed: false }
    throw new WarrenError('conflict', `sandbox ${sandboxId} is ${s.state}`)
  }

  private async extend(s: Sandbox, team: Team, durationS: number): Promise<Sandbox> {
    const now = Date.now()
    const updated = await extendLease(
      this.db,
      s.sandboxId,
      extendedEnd(s.endAt, now, durationS, this.limits(s, team)),
    )
    if (!updated) throw await this.lostRace(s.sandboxId)
    this.scheduler.schedule(s.sandboxId, updated.endAt)
    return updated
  }

  /**
   * Called by the scheduler at a deadline. The expiry only applies if the
   * lease has really run out in the store: an extension that committed first
   * wins, and the sandbox is rescheduled at its new deadline.
   */
  async expire(sandboxId: string, _at: number): Promise<void> {
    const now = Date.now()
    const killing = await transition(
      this.db,
      sandboxId,
      { from: ['running'], endAtAtMost: now },
      { state: 'killing', killReason: 'timeout' },
    )
    if (killing) return this.finishKill(killing, 'timeout', 'running')
    const s = await getSandbox(this.db, sandboxId)
    if (s?.state === 'running') this.scheduler.schedule(sandboxId, s.endAt)
  }

  private async running(team: Team, sandboxId: string): Promise<Sandbox> {
    const s = await this.get(team, sandboxId)
    if (s.state !== 'running')
      throw new WarrenError('conflict', `sandbox ${sandboxId} is ${s.state}`)
    return s
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
