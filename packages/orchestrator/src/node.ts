import {
  ConnectWindows,
  KeyedLock,
  type Logger,
  type NetworkConfig,
  type NetworkPolicy,
  type OrchestratorConfig,
  parseNetworkConfig,
  parseTemplateId,
  SingleFlight,
  WarrenError,
} from '@warren/shared'
import pLimit from 'p-limit'
import type { CreateSpec, NodeHost, ResumeInput, WarmSandbox } from './host/node-host.js'
import { adoptSandboxes } from './lifecycle/adopt.js'
import { buildTemplate } from './lifecycle/build.js'
import { type CreateInput, createSpec } from './lifecycle/create.js'
import {
  type Entry,
  holdsMemory,
  type NodeState,
  type Settled,
  toFiles,
} from './lifecycle/entries.js'
import { NodeExits } from './lifecycle/exits.js'
import { FrozenBudget } from './lifecycle/frozen-budget.js'
import { killSandbox } from './lifecycle/kill.js'
import { moveIn } from './lifecycle/move-in.js'
import { updateNetwork } from './lifecycle/network-update.js'
import { pauseSandbox } from './lifecycle/pause.js'
import { resumeSandbox } from './lifecycle/resume.js'
import { Teardowns } from './lifecycle/teardowns.js'
import { WarmPool } from './lifecycle/warm-pool.js'
import type { LogLine } from './sandboxes/logs.js'
import type { MetricsSample, SandboxFigures } from './sandboxes/metrics.js'
import type { SandboxRecord } from './sandboxes/record.js'
import type { TemplateMetadata } from './templates/metadata.js'
import type { BuildLog, TemplateBuildSpec } from './templates/run-build.js'
import { NodeSnapshots } from './transfer/snapshots.js'
import { VolumeRegistry } from './volumes/registry.js'

export type { CreateInput, ResumeInput }

/**
 * The sandboxes of one node: the state machine over the host's steps.
 * Creates reserve their id synchronously, so two creates of one id have one
 * winner. Kill, pause, resume, network updates and the frozen-memory policy
 * of one sandbox run one at a time (a per-sandbox lock) and check the state
 * they need once they hold it: a kill racing a resume waits for it and then
 * kills; a second resume finds the sandbox running and gets a conflict.
 */
export class SandboxNode {
  private readonly entries = new Map<string, Entry>()
  private readonly changeListeners = new Set<(sandboxId: string) => void>()
  private memoryAllocated = 0
  private readonly createLimit: ReturnType<typeof pLimit>
  private readonly buildLimit: ReturnType<typeof pLimit>
  private readonly locks = new KeyedLock()
  private readonly kills = new SingleFlight<void>()
  private readonly state: NodeState
  private readonly budget: FrozenBudget
  /** Killed sandboxes whose teardown runs in the background. */
  private readonly teardowns: Teardowns
  /** Builds of deleted templates kept for the sandboxes on them, by template (see finishDeletes). */
  private readonly keptBuilds = new Map<string, Set<string>>()
  /** Template builds running on this node, by template id. */
  private readonly building = new Map<string, number>()
  /** Sandboxes whose container died on their own, until they are killed (and who hears of it). */
  readonly exits: NodeExits
  /** The node's volumes and which sandboxes mount them. */
  readonly volumes: VolumeRegistry
  /** Snapshots packed for peers, fetched from them, published to the shared store. */
  readonly snapshots: NodeSnapshots
  /** Sandboxes started ahead of creates (WARREN_WARM_POOL); not in `entries`, never listed. */
  readonly warm: WarmPool
  /**
   * How many new connections the node proxy sends to each sandbox port at
   * once (see ConnectWindow); a sandbox's are dropped when it pauses or dies.
   */
  readonly connectWindows = new ConnectWindows()

  constructor(
    readonly cfg: OrchestratorConfig,
    readonly log: Logger,
    private readonly host: NodeHost,
  ) {
    this.createLimit = pLimit(cfg.maxConcurrentCreates)
    this.buildLimit = pLimit(cfg.maxConcurrentBuilds)
    this.volumes = new VolumeRegistry(host)
    this.snapshots = new NodeSnapshots(host, log, cfg)
    this.teardowns = new Teardowns(log, () => this.finishDeletes())
    this.state = {
      host,
      log,
      settled: (id) => this.settled(id),
      find: (id) => {
        const e = this.entries.get(id)
        return e?.state === 'creating' ? undefined : e
      },
      all: () => this.settledEntries(),
      locked: (id, fn) => this.locks.run(id, fn),
      set: (id, entry) => this.setEntry(id, entry),
      forget: (id) => this.forgetEntry(id),
      reserveMemory: (mb) => this.reserveMemory(mb),
      releaseMemory: (mb) => {
        this.memoryAllocated -= mb
      },
    }
    const frozenMb = cfg.maxFrozenMemoryMb ?? Math.floor(cfg.memoryCapacityMb / 4)
    this.budget = new FrozenBudget(this.state, frozenMb * 2 ** 20)
    this.exits = new NodeExits(this.state, cfg.exitWatchIntervalMs)
    this.exits.onExit((id) => this.changed(id))
    host.policies.onChange((id) => this.changed(id))
    this.warm = new WarmPool({
      host,
      log,
      sizes: cfg.warmPool,
      idleMs: cfg.warmPoolIdleMs,
      tryReserve: (mb) => {
        if (mb > this.cfg.memoryCapacityMb - this.memoryAllocated) return false
        this.memoryAllocated += mb
        return true
      },
      releaseMemory: (mb) => {
        this.memoryAllocated -= mb
      },
    })
  }

  /** Prepares the host, then adopts surviving sandboxes and removes debris. */
  async start(): Promise<{ adopted: number; removed: number }> {
    const { adopted, removed, volumes } = await this.host.start()
    this.volumes.load(
      volumes,
      adopted.map((a) => a.record),
    )
    await adoptSandboxes(this.state, adopted, (mb) => {
      this.memoryAllocated += mb
    })
    this.exits.start()
    this.warm.start()
    return { adopted: adopted.length, removed: removed.length }
  }

  /**
   * Stops background work. Sandboxes keep running and are adopted by the
   * next start; warm sandboxes are removed (a start would remove them anyway),
   * and the teardowns of killed ones are finished first (a node killed
   * before that leaves them to its next start).
   */
  async stop(): Promise<void> {
    this.exits.stop()
    await this.warm.stop()
    this.connectWindows.close()
    await this.budget.settled()
    await this.teardowns.settled()
    await this.host.stop({ idle: this.entries.size === 0 })
    this.log.info({ sandboxes: this.entries.size }, 'node stopped')
  }

  async create(input: CreateInput): Promise<SandboxRecord> {
    const spec = createSpec(this.host, input)
    // A killed sandbox's id stays taken until its directory is gone.
    if (this.entries.has(spec.sandboxId) || this.teardowns.has(spec.sandboxId)) {
      throw new WarrenError('already_exists', `sandbox ${spec.sandboxId} already exists`)
    }
    // A warm sandbox leaves the pool in this same turn, its memory already reserved.
    const warm = this.warm.take(spec)
    if (!warm) this.reserveMemory(spec.memoryMb)
    try {
      // Its volumes are claimed with the id, in the same turn: a volume
      // delete from here on sees the sandbox (see VolumeRegistry).
      this.volumes.claim(spec.sandboxId, spec.volumeMounts)
      this.setEntry(spec.sandboxId, { state: 'creating' })
      const { record, slot } = warm
        ? await this.claimOrCreate(warm, spec)
        : await this.createLimit(async () => {
            await this.addressFreed()
            return this.host.create(spec)
          })
      this.host.policies.set(spec.sandboxId, record.sandboxIp ?? undefined, spec.policy)
      this.setEntry(spec.sandboxId, { state: 'running', record, slot })
      return record
    } catch (err) {
      this.forgetEntry(spec.sandboxId)
      this.memoryAllocated -= spec.memoryMb
      this.volumes.release(spec.sandboxId, spec.volumeMounts)
      throw err
    }
  }

  /**
   * Claims a warm sandbox; if that fails (the host has then destroyed it, so
   * it is never handed out again) the create boots one as without a pool.
   */
  private async claimOrCreate(warm: WarmSandbox, spec: CreateSpec) {
    try {
      return await this.host.claimWarm(warm, spec)
    } catch (err) {
      this.log.warn(
        { err, sandboxId: spec.sandboxId },
        'warm claim failed; starting the sandbox cold',
      )
      return this.createLimit(async () => {
        await this.addressFreed()
        return this.host.create(spec)
      })
    }
  }

  /**
   * Removes a sandbox in any state (its snapshot too), after any operation
   * under way. Concurrent kills of one sandbox share one removal.
   */
  kill(sandboxId: string): Promise<void> {
    if (this.entries.get(sandboxId)?.state === 'creating') {
      return Promise.reject(
        new WarrenError('conflict', `sandbox ${sandboxId} is still being created`),
      )
    }
    return this.kills.run(sandboxId, () =>
      this.state.locked(sandboxId, async () => {
        await killSandbox(this.state, this.settled(sandboxId), this.volumes, this.teardowns)
        this.connectWindows.forget(sandboxId)
        this.changed(sandboxId)
        this.snapshots.killed(sandboxId)
      }),
    )
  }

  /**
   * Pauses a running sandbox: its processes are frozen and its writable layer
   * flushed to disk. With `memory: false` the processes are then dropped and
   * only the files are kept; the memory and network go back to the node.
   */
  async pause(sandboxId: string, opts: { memory: boolean }): Promise<SandboxRecord> {
    const record = await this.state.locked(sandboxId, async () => {
      const paused = await pauseSandbox(this.state, this.alive(sandboxId), opts.memory)
      this.connectWindows.forget(sandboxId)
      this.changed(sandboxId)
      await this.snapshots.publish(paused)
      return paused
    })
    if (record.pausedKind === 'memory') this.budget.enforce()
    return record
  }

  /**
   * Thaws a paused sandbox's processes, or boots it from its files; says
   * which happened. With `moveFrom`, a sandbox this node lacks is fetched
   * (see lifecycle/move-in) and booted from its files.
   */
  async resume(
    sandboxId: string,
    input: ResumeInput,
    moveFrom?: { rpcUrl: string | undefined; templateSourceUrl?: string | undefined },
  ): Promise<{ record: SandboxRecord; kind: 'memory' | 'files' }> {
    const result = await this.state.locked(sandboxId, async () => {
      if (this.teardowns.has(sandboxId))
        throw new WarrenError('not_found', `sandbox ${sandboxId} was killed`)
      if (moveFrom && !this.entries.has(sandboxId)) {
        // The id is reserved while its snapshot arrives: a create of it is refused.
        this.setEntry(sandboxId, { state: 'creating' })
        try {
          return await moveIn(this.state, this.snapshots, sandboxId, moveFrom, input)
        } finally {
          if (this.entries.get(sandboxId)?.state === 'creating') this.forgetEntry(sandboxId)
        }
      }
      const entry = this.settled(sandboxId)
      if (entry.state !== 'paused')
        throw new WarrenError('conflict', `sandbox ${sandboxId} is ${entry.state}`)
      if (entry.record.pausedKind === 'files') await this.addressFreed()
      return resumeSandbox(this.state, entry, input)
    })
    this.snapshots.resumed(sandboxId)
    return result
  }

  /** A paused sandbox's snapshot packed for a peer that resumes it (see transfer/http). */
  exportSnapshot(sandboxId: string) {
    return this.state.locked(sandboxId, async () => {
      const entry = this.settled(sandboxId)
      if (entry.state !== 'paused')
        throw new WarrenError('conflict', `sandbox ${sandboxId} is ${entry.state}, not paused`)
      // A frozen gVisor sandbox travels with its processes, saved to its files.
      if (entry.record.pausedKind === 'memory' && entry.record.isolation === 'gvisor') {
        const files = await toFiles(
          this.state,
          entry,
          entry.record.pausedAt ?? new Date().toISOString(),
          true,
        )
        return this.snapshots.export(files)
      }
      return this.snapshots.export(entry.record)
    })
  }

  /** Replaces the network rules of a running sandbox atomically (see lifecycle/network-update). */
  async updateNetwork(
    sandboxId: string,
    network: NetworkConfig,
    allowInternetAccess: boolean | null,
  ): Promise<SandboxRecord> {
    const policy = parseNetworkConfig(network, allowInternetAccess)
    return this.state.locked(sandboxId, () =>
      updateNetwork(this.state, this.alive(sandboxId), { network, allowInternetAccess, policy }),
    )
  }

  /** Resolves once the frozen-memory passes started so far are done. */
  frozenBudgetSettled(): Promise<void> {
    return this.budget.settled()
  }

  /**
   * With no address left but some still held by teardowns, waits for them:
   * a killed sandbox's address goes to another only once its namespace is
   * gone (its release is the teardown's last step).
   */
  private async addressFreed(): Promise<void> {
    if (this.host.addressesFree() + this.host.readySlots() === 0 && this.teardowns.size)
      await this.teardowns.settled()
  }

  /** Sandboxes killed whose teardown has not finished. */
  pendingTeardowns(): number {
    return this.teardowns.size
  }

  /** Resolves once the teardowns started so far have ended. */
  teardownsSettled(): Promise<void> {
    return this.teardowns.settled()
  }

  private settled(sandboxId: string): Settled {
    const entry = this.entries.get(sandboxId)
    if (!entry || entry.state === 'creating')
      throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    return entry
  }

  /** A settled sandbox whose container has not exited: what pause and updates work on. */
  private alive(sandboxId: string): Settled {
    const entry = this.settled(sandboxId)
    if (entry.exited)
      throw new WarrenError(
        'conflict',
        `sandbox ${sandboxId} has exited (${entry.exited.detail}); it can only be killed`,
      )
    return entry
  }

  private settledEntries(): Settled[] {
    return [...this.entries.values()].filter((e): e is Settled => e.state !== 'creating')
  }

  /** Takes memory for a sandbox, evicting warm sandboxes when that makes the room. */
  private reserveMemory(memoryMb: number): void {
    const short = memoryMb - (this.cfg.memoryCapacityMb - this.memoryAllocated)
    // Only when that makes the room: a create refused anyway keeps the pool.
    if (short > 0 && short <= this.warm.memoryMb()) this.warm.evict(short)
    const free = this.cfg.memoryCapacityMb - this.memoryAllocated
    if (memoryMb > free) {
      throw new WarrenError(
        'capacity_exhausted',
        `not enough memory on this node: ${memoryMb} MB requested, ${free} MB free`,
      )
    }
    this.memoryAllocated += memoryMb
  }

  get(sandboxId: string): SandboxRecord {
    return this.settled(sandboxId).record
  }

  /**
   * Told of every sandbox whose state, address, exit, network policy or
   * connect windows changed: what the node proxy judges traffic by (proxy
   * workers cache those verdicts until told).
   */
  onSandboxChange(fn: (sandboxId: string) => void): () => void {
    this.changeListeners.add(fn)
    return () => this.changeListeners.delete(fn)
  }

  private changed(sandboxId: string): void {
    for (const fn of this.changeListeners) fn(sandboxId)
  }

  private setEntry(sandboxId: string, entry: Entry): void {
    this.entries.set(sandboxId, entry)
    this.changed(sandboxId)
  }

  private forgetEntry(sandboxId: string): void {
    this.entries.delete(sandboxId)
    this.changed(sandboxId)
  }

  /** What a sandbox's disk holds now, in bytes (undefined while it is unmounted). */
  diskUsed(sandboxId: string): number | undefined {
    return this.host.diskUsed(this.get(sandboxId))
  }

  /** The network policy in force for a sandbox (ingress rules, host masking). */
  networkPolicy(sandboxId: string): NetworkPolicy | undefined {
    return this.host.policies.get(sandboxId)
  }

  sampleMetrics(sandboxId: string): MetricsSample {
    const r = this.alive(sandboxId).record
    if (r.state !== 'running')
      throw new WarrenError('conflict', `sandbox ${sandboxId} is ${r.state}`)
    return this.host.sampleMetrics(r)
  }

  /**
   * Figures of every sandbox whose processes hold resources now (running,
   * or paused with memory), for Prometheus; one that goes meanwhile is
   * left out.
   */
  figures(): Array<{ record: SandboxRecord; figures: SandboxFigures }> {
    const out: Array<{ record: SandboxRecord; figures: SandboxFigures }> = []
    for (const record of this.list()) {
      if (!holdsMemory(record)) continue
      try {
        out.push({ record, figures: this.host.figures(record) })
      } catch {
        // Removed between the list and the read.
      }
    }
    return out
  }

  /** Network slots ready for creates. */
  readySlots(): number {
    return this.host.readySlots()
  }

  async logs(sandboxId: string, startMs: number, limit: number): Promise<LogLine[]> {
    this.get(sandboxId)
    return this.host.logs(sandboxId, startMs, limit)
  }

  list(): SandboxRecord[] {
    return this.settledEntries().map((e) => e.record)
  }

  templates(): TemplateMetadata[] {
    return this.host.templates()
  }

  /** Builds a template in one of the node's build slots (see lifecycle/build). */
  buildTemplate(
    spec: TemplateBuildSpec,
    started: () => void,
    log: BuildLog,
    signal: AbortSignal,
  ): Promise<{ metadata: TemplateMetadata; cached: number; built: number }> {
    // A spec refused at once throws here, before it is counted; the build
    // itself starts no sooner than the next tick.
    const build = buildTemplate(this.state, this.buildLimit, spec, { started, log, signal })
    const id = spec.templateId
    this.building.set(id, (this.building.get(id) ?? 0) + 1)
    return build.finally(() => {
      const n = (this.building.get(id) ?? 1) - 1
      if (n > 0) this.building.set(id, n)
      else this.building.delete(id)
      // Deletes that waited for this build finish now, unless it made the template again.
      this.finishDeletes()
    })
  }

  /**
   * A template of a sandbox's files as they are now (running sandboxes run
   * on; a running or paused one is held still while its layer is copied).
   */
  snapshot(
    sandboxId: string,
    templateId: string,
    envdAccessToken?: string,
  ): Promise<TemplateMetadata> {
    parseTemplateId(templateId)
    return this.state.locked(sandboxId, () =>
      this.host.snapshot(this.settled(sandboxId).record, templateId, envdAccessToken),
    )
  }

  /**
   * Removes a template; the builds this node's sandboxes stand on stay
   * until the last of those sandboxes is torn down (see finishDeletes).
   */
  deleteTemplate(templateId: string): number {
    const id = parseTemplateId(templateId)
    const inUse = this.buildsInUse()
    const removed = this.host.deleteTemplate(id, inUse)
    const kept = [...inUse].filter((b) => b.startsWith(`${id}/`)).map((b) => b.slice(id.length + 1))
    if (kept.length) this.keptBuilds.set(id, new Set([...(this.keptBuilds.get(id) ?? []), ...kept]))
    return removed
  }

  /** `templateId/buildId` of every build a sandbox of this node stands on. */
  private buildsInUse(): Set<string> {
    // A sandbox being torn down still has its overlay on its build's layers.
    return new Set([
      ...[...this.list(), ...this.teardowns.records()].map((r) => `${r.templateId}/${r.buildId}`),
      ...this.warm.buildsInUse(),
    ])
  }

  /**
   * After each teardown and build: the builds deleted templates kept for their
   * sandboxes go, with their layers, once no sandbox stands on them. Not
   * while a build of the same template runs (a build of the same recipe
   * has the same id); nothing if the template was made again.
   */
  private finishDeletes(): void {
    if (!this.keptBuilds.size) return
    const inUse = this.buildsInUse()
    for (const [id, builds] of this.keptBuilds) {
      if (this.building.has(id)) continue
      const free = [...builds].filter((b) => !inUse.has(`${id}/${b}`))
      if (!free.length) continue
      for (const b of free) builds.delete(b)
      if (!builds.size) this.keptBuilds.delete(id)
      try {
        this.host.removeBuilds(id, free)
      } catch (err) {
        this.log.warn(
          { err, templateId: id },
          'removing the kept builds of a deleted template failed',
        )
      }
    }
  }

  /** The envd version new sandboxes get (undefined with a custom first process). */
  envdVersion(): string | undefined {
    return this.host.envdVersion()
  }

  info() {
    // CPUs are promised like memory: to running and frozen sandboxes.
    const cpuAllocated = this.settledEntries()
      .filter((e) => holdsMemory(e.record))
      .reduce((n, e) => n + e.record.cpuCount, 0)
    return {
      nodeId: this.cfg.nodeId,
      cpuCount: this.host.cpuCount,
      cpuAllocated,
      memoryMbTotal: this.cfg.memoryCapacityMb,
      memoryMbAllocated: this.memoryAllocated,
      sandboxes: this.entries.size,
      /** Warm sandboxes ready per template; their memory is in memoryMbAllocated. */
      warm: this.warm.sizes(),
      addressesFree: this.host.addressesFree(),
      isolations: this.host.isolations(),
    }
  }
}
