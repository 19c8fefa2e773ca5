import { type Logger, type NetworkConfig, WarrenError } from '@warren/shared'
import { PausedKind } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { Catalog } from '../catalog/catalog.js'
import type { Placement } from '../placement/nodes.js'
import type { Db } from '../store/db.js'
import {
  extendLease,
  getSandbox,
  runningDeadlines,
  type Sandbox,
  sandboxesInStates,
  transition,
} from '../store/sandboxes.js'
import type { Team } from '../store/teams.js'
import type { Clock } from './clock.js'
import {
  type Expiries,
  isLive,
  KIND,
  type LifecycleCore,
  limits,
  lostRace,
  teamReader,
} from './core.js'
import { type CreateSandboxRequest, createSandbox } from './create.js'
import { expireAtDeadline, finishExpiry } from './expiry.js'
import { finishKill } from './kill.js'
import { endAfter, extendedEnd } from './lease.js'
import { LifecycleMetrics } from './metrics.js'
import { NetworkUpdates } from './network-updates.js'
import { drainNode, killExited, reportNodeLost } from './node-loss.js'
import { finishPause } from './pause.js'
import { killOrphan, markLost, recoverInterrupted } from './recovery.js'
import { Replication, type ReplicationOptions } from './replication.js'
import { type ResumeOptions, Resumes } from './resume.js'
import { type ForkResult, forkSandbox, type SnapshotResult, snapshotSandbox } from './snapshot.js'
import { wireExpiry } from './wiring.js'

export type { CreateSandboxRequest, ResumeOptions }

export interface LifecycleDeps {
  db: Db
  placement: Placement
  catalog: Catalog
  log: Logger
  maxConcurrentExpiries: number
  /**
   * The system clock (SQLite) or the store's time (PostgreSQL), unless a
   * test moves time itself.
   */
  clock?: Clock
  /** Tuning of the replica set on PostgreSQL. */
  replication?: Partial<ReplicationOptions>
}

/**
 * The sandbox state machine. Every change is one compare-and-set in the store
 * (see store/sandboxes.ts `transition`): of two racing calls one wins and the
 * other gets 409 (conflict) or 404 (gone), never a half-applied change. Each
 * two-step change (kill, pause, resume) moves through a transitional state
 * first and either completes (kill.ts, pause.ts, resume.ts) or rolls back to
 * where it started.
 */
export class LifecycleEngine {
  readonly scheduler: Expiries
  readonly metrics = new LifecycleMetrics()
  readonly clock: Clock
  /** The replica set's background work (PostgreSQL); undefined on SQLite. */
  readonly replication: Replication | undefined
  private readonly core: LifecycleCore
  private readonly resumes: Resumes
  private readonly networkUpdates: NetworkUpdates

  constructor(deps: LifecycleDeps) {
    const parts = wireExpiry(deps, {
      atDeadline: (id) => expireAtDeadline(this.core, id),
      claimed: (s) => finishExpiry(this.core, s),
      lateness: (ms) => this.metrics.expiryLateness.observe(ms / 1000),
    })
    const { clock, replica, poller } = parts
    this.clock = clock
    this.scheduler = parts.scheduler
    this.core = {
      db: deps.db,
      placement: deps.placement,
      catalog: deps.catalog,
      log: deps.log,
      clock,
      scheduler: this.scheduler,
      metrics: this.metrics,
      replica: parts.identity,
      team: teamReader(deps.db),
    }
    this.replication =
      replica && poller ? new Replication(this.core, replica, poller, parts.options) : undefined
    this.resumes = new Resumes(this.core)
    this.networkUpdates = new NetworkUpdates(this.core)
  }

  /** This process's id among replicas (owner of the rows it moves). */
  get replicaId(): string {
    return this.core.replica.id
  }

  /**
   * Loads the catalog and the deadlines, and settles what a crash left
   * halfway; with PostgreSQL, joins the replica set (replication.ts).
   */
  async start(): Promise<void> {
    if (this.replication) return this.replication.start()
    const { db, catalog } = this.core
    for (const s of await sandboxesInStates(db, ['running', 'paused', 'killed'])) catalog.update(s)
    await recoverInterrupted(this.core)
    for (const { id, endAt } of await runningDeadlines(db)) this.scheduler.schedule(id, endAt)
  }

  async stop(): Promise<void> {
    await this.scheduler.stop()
    await this.replication?.stop()
  }

  create(team: Team, req: CreateSandboxRequest): Promise<Sandbox> {
    return createSandbox(this.core, team, req)
  }

  /** The team's sandbox in any live state; another team's or a killed one is a plain 404. */
  async get(team: Team, sandboxId: string): Promise<Sandbox> {
    const s = await getSandbox(this.core.db, sandboxId)
    if (!isLive(s) || s.teamId !== team.id) {
      throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    }
    return s
  }

  /**
   * The sandbox as GET shows it, with what its disk holds (asked of its
   * node). A paused sandbox's snapshot kind is asked of the node too: it may
   * have dropped frozen processes to files since (its memory policy, or
   * processes lost) without the API hearing of it.
   */
  async describe(
    team: Team,
    sandboxId: string,
  ): Promise<{ sandbox: Sandbox; diskUsedBytes?: number; isolation?: string }> {
    const s = await this.get(team, sandboxId)
    if (s.state !== 'running' && s.state !== 'paused') return { sandbox: s }
    try {
      const { sandbox } = await this.core.placement.node(s.nodeId).client.get({ sandboxId })
      const used = sandbox?.diskUsedBytes
      const usage = {
        ...(used === undefined ? {} : { diskUsedBytes: Number(used) }),
        // What the node runs it under; the record's when the node does not say.
        isolation: sandbox?.isolation || s.isolation,
      }
      const dropped =
        s.pausedKind === 'memory' && KIND[sandbox?.pausedKind ?? PausedKind.UNSPECIFIED] === 'files'
      if (!dropped) return { sandbox: s, ...usage }
      const files = await transition(
        this.core.db,
        sandboxId,
        { from: ['paused'], version: s.version },
        { pausedKind: 'files' },
      )
      return { sandbox: files ?? s, ...usage }
    } catch {
      return { sandbox: s } // the node is unreachable: what the store knows
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
      this.core.db,
      sandboxId,
      { from: [s.state], version: s.version },
      {
        state: 'killing',
        killReason: 'request',
        killedAt: this.core.clock.now(),
        owner: this.core.replica.id,
      },
    )
    if (!killing) throw await lostRace(this.core.db, sandboxId)
    await finishKill(this.core, killing, 'request', s.state)
  }

  /** `endAt = now + timeout` (may shorten; 0 expires now). */
  async setTimeout(team: Team, sandboxId: string, timeoutS: number): Promise<Sandbox> {
    const s = await this.running(team, sandboxId)
    const endAt = endAfter(this.core.clock.now(), timeoutS, limits(s, team))
    const updated = await transition(
      this.core.db,
      sandboxId,
      { from: ['running'], version: s.version },
      { endAt },
    )
    if (!updated) throw await lostRace(this.core.db, sandboxId)
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
   * Traffic for a sandbox with keepalive, seen by an edge of `cluster`: the
   * lease becomes at least now + its timeout. Another cluster's sandbox is
   * left alone.
   */
  async keepAlive(sandboxId: string, cluster: string | null): Promise<void> {
    this.metrics.keepaliveCalls.inc()
    const s = await getSandbox(this.core.db, sandboxId)
    if (s?.state !== 'running' || !s.lifecycle.keepaliveTraffic || s.cluster !== cluster) return
    const team = await this.core.team(s.teamId)
    const target = extendedEnd(s.endAt, this.core.clock.now(), s.timeoutS, limits(s, team))
    if (target <= s.endAt) return
    const updated = await extendLease(this.core.db, sandboxId, target)
    if (updated) {
      this.scheduler.schedule(sandboxId, updated.endAt)
      this.metrics.keepaliveExtensions.inc()
    }
  }

  private async extend(s: Sandbox, team: Team, durationS: number): Promise<Sandbox> {
    const target = extendedEnd(s.endAt, this.core.clock.now(), durationS, limits(s, team))
    // A lease an API call moves is an event (timeout_changed); keepalive's are not.
    const updated = await extendLease(this.core.db, s.sandboxId, target, { at: Date.now() })
    if (!updated) throw await lostRace(this.core.db, s.sandboxId)
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
      this.core.db,
      sandboxId,
      { from: ['running'], version: s.version },
      // filesOnly says already how the pause goes, so a takeover can finish it.
      { state: 'pausing', owner: this.core.replica.id, filesOnly: !memory },
    )
    if (!pausing) throw await lostRace(this.core.db, sandboxId)
    return finishPause(this.core, pausing, memory, true)
  }

  /** A template of the sandbox's files as they are now (it runs on). */
  async snapshot(team: Team, sandboxId: string, name?: string): Promise<SnapshotResult> {
    return snapshotSandbox(this.core, await this.get(team, sandboxId), { name, kind: 'snapshot' })
  }

  /** `count` new sandboxes from the sandbox's files (fresh processes), each its own outcome. */
  async fork(
    team: Team,
    sandboxId: string,
    opts: { timeoutS: number | undefined; count: number },
  ): Promise<ForkResult[]> {
    return forkSandbox(this.core, team, await this.get(team, sandboxId), opts)
  }

  resume(s: Sandbox, opts: ResumeOptions): Promise<Sandbox> {
    return this.resumes.resume(s, opts)
  }

  resumeForTraffic(sandboxId: string): Promise<Sandbox> {
    return this.resumes.forTraffic(sandboxId)
  }

  updateNetwork(
    team: Team,
    sandboxId: string,
    network: NetworkConfig,
    allowInternetAccess: boolean | null,
  ): Promise<Sandbox> {
    return this.networkUpdates.update(
      sandboxId,
      () => this.running(team, sandboxId),
      network,
      allowInternetAccess,
    )
  }

  /** The node enforces another network config than the store's: push the store's again. */
  repairNetwork(sandboxId: string): Promise<void> {
    return this.networkUpdates.resync(sandboxId, async () => {
      const s = await getSandbox(this.core.db, sandboxId)
      if (s?.state !== 'running')
        throw new WarrenError('conflict', `sandbox ${sandboxId} is no longer running`)
      return s
    })
  }

  markLost(sandboxId: string, version: number): Promise<void> {
    return markLost(this.core, sandboxId, version)
  }

  killOrphan(nodeId: string, sandboxId: string): Promise<void> {
    return killOrphan(this.core, nodeId, sandboxId)
  }

  /** The node was silent past its grace period (see node-loss.ts). */
  reportNodeLost(nodeId: string): Promise<number> {
    return reportNodeLost(this.core, nodeId)
  }

  /** The node found the sandbox's container dead. */
  killExited(nodeId: string, sandboxId: string, detail: string, oom: boolean): Promise<void> {
    return killExited(this.core, nodeId, sandboxId, detail, oom)
  }

  /** Pauses what runs on a (cordoned) node, to resume elsewhere. */
  drainNode(nodeId: string): Promise<number> {
    return drainNode(this.core, nodeId)
  }

  private async running(team: Team, sandboxId: string): Promise<Sandbox> {
    const s = await this.get(team, sandboxId)
    if (s.state !== 'running')
      throw new WarrenError('conflict', `sandbox ${sandboxId} is ${s.state}`)
    return s
  }
}
