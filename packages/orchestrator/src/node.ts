import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import {
  CleanupStack,
  createLogger,
  type Logger,
  type NetworkConfig,
  type NetworkPolicy,
  type OrchestratorConfig,
  parseNetworkConfig,
  parseSandboxId,
  parseTemplateId,
  WarrenError,
} from '@warren/shared'
import pLimit from 'p-limit'
import { cgroupsPath, type NodeContext, templatesDirOf } from './context.js'
import { envdDirOf, installEnvd, pruneEnvd } from './envd-bundle.js'
import { AddressPool } from './network/address-pool.js'
import { cutDeniedFlows } from './network/conntrack.js'
import { hostIpv4Addresses } from './network/netns.js'
import { applyOnHost, renderHostTable } from './network/nftables.js'
import { NodeNetwork } from './network/services.js'
import { type NetworkSlot, NetworkSlots } from './network/slots.js'
import { acquirePidLock } from './pid-lock.js'
import { Runc } from './runtime/runc.js'
import { applyEgressRules, bootSandbox } from './sandboxes/boot.js'
import { asStartError, createSandbox, undo } from './sandboxes/create.js'
import { destroySandbox } from './sandboxes/destroy.js'
import { type LogLine, readLogLines } from './sandboxes/logs.js'
import { type MetricsSample, MetricsSampler, readCgroup } from './sandboxes/metrics.js'
import { dropToFiles, freeze } from './sandboxes/pause.js'
import { reconcile } from './sandboxes/reconcile.js'
import { type SandboxRecord, sandboxPaths, writeRecord } from './sandboxes/record.js'
import { TemplateRegistry } from './templates/registry.js'

export interface CreateInput {
  sandboxId: string
  templateId: string
  cpuCount?: number
  memoryMb?: number
  diskSizeMb?: number
  envVars?: Record<string, string>
  envdAccessToken?: string
  network?: NetworkConfig
  allowInternetAccess?: boolean | null
}

export interface ResumeInput {
  envdAccessToken?: string
  envVars?: Record<string, string>
  /** false: drop any frozen processes and boot from the files (a reboot). */
  memory?: boolean
}

/**
 * A sandbox the node knows. `creating` reserves the id and its memory; a
 * sandbox paused to files only holds no network slot.
 */
type Entry =
  | { state: 'creating' }
  | {
      state: 'running' | 'paused'
      record: SandboxRecord
      slot: NetworkSlot | undefined
      frozenBytes?: number
    }

const MIN_MEMORY_MB = 64

/**
 * The sandboxes of one node. Creates reserve their id synchronously, so two
 * creates of one id have one winner. Kill, pause, resume and the frozen-memory
 * policy of one sandbox run one at a time (a per-sandbox lock) and check the
 * state they need once they hold it: a kill racing a resume waits for it and
 * then kills; a second resume finds the sandbox running and gets a conflict.
 */
export class SandboxNode {
  readonly ctx: NodeContext
  private readonly entries = new Map<string, Entry>()
  private memoryAllocated = 0
  private readonly createLimit: ReturnType<typeof pLimit>
  private unlock: (() => void) | undefined
  readonly network: NodeNetwork
  private readonly metrics = new MetricsSampler()
  private readonly locks = new Map<string, Promise<unknown>>()
  private readonly kills = new Map<string, Promise<void>>()
  private readonly frozenBudgetBytes: number
  private demoting: Promise<void> = Promise.resolve()
  private readonly cpuCount = cpus().length

  constructor(cfg: OrchestratorConfig, log: Logger = createLogger('orchestrator')) {
    const templatesDir = templatesDirOf(cfg)
    const pool = new AddressPool(cfg.addressPool)
    const network = new NodeNetwork(cfg, log)
    const slots = new NetworkSlots({
      prefix: cfg.prefix,
      pool,
      target: cfg.warmNetworkSlots,
      log,
      baseTable: (slot) => network.tableFor(slot),
    })
    this.ctx = {
      cfg,
      templatesDir,
      log,
      runc: new Runc(join(cfg.dataDir, 'runc')),
      templates: new TemplateRegistry(templatesDir),
      pool,
      slots,
      envd: undefined,
      tableFor: network.tableFor,
      policies: network.policies,
    }
    this.network = network
    this.createLimit = pLimit(cfg.maxConcurrentCreates)
    this.frozenBudgetBytes =
      (cfg.maxFrozenMemoryMb ?? Math.floor(cfg.memoryCapacityMb / 4)) * 2 ** 20
  }

  /** Prepares the host, then adopts surviving sandboxes and removes debris. */
  async start(): Promise<{ adopted: number; removed: number }> {
    const { cfg, log } = this.ctx
    // Traversable by sandbox roots (runc reaches each rootfs as the mapped uid), not listable.
    for (const dir of [cfg.dataDir, join(cfg.dataDir, 'sandboxes')]) {
      mkdirSync(dir, { recursive: true, mode: 0o711 })
      chmodSync(dir, statSync(dir).mode | 0o011)
    }
    this.unlock = acquirePidLock(cfg.dataDir, `.node-${cfg.prefix}.lock`, 'data directory')
    this.ctx.envd = cfg.sandboxCommand ? undefined : installEnvd(cfg)
    // Sandboxes reach the world through this host: it must route.
    writeFileSync('/proc/sys/net/ipv4/ip_forward', '1')
    await applyOnHost(
      renderHostTable({
        prefix: cfg.prefix,
        pool: cfg.addressPool,
        services: this.network.servicePorts,
      }),
    )
    await this.network.start(await hostIpv4Addresses())

    const { adopted, removed } = await reconcile(this.ctx)
    for (const { record, slot } of adopted) {
      const frozenBytes = record.pausedKind === 'memory' ? this.usage(record.sandboxId) : undefined
      this.ctx.policies.set(record.sandboxId, record.sandboxIp ?? undefined, policyOf(record))
      this.entries.set(record.sandboxId, {
        state: record.state,
        record,
        slot,
        ...(frozenBytes ? { frozenBytes } : {}),
      })
      if (holdsMemory(record)) this.memoryAllocated += record.memoryMb
    }
    if (this.ctx.envd)
      pruneEnvd(
        cfg,
        new Set([
          this.ctx.envd.dir,
          ...adopted.map((a) => envdDirOf(cfg.dataDir, a.record.sandboxId)),
        ]),
      )
    log.info({ adopted: adopted.length, removed: removed.length }, 'node reconciled')
    this.ctx.slots.fill()
    return { adopted: adopted.length, removed: removed.length }
  }

  /** Stops background work. Sandboxes keep running and are adopted by the next start. */
  async stop(): Promise<void> {
    await this.ctx.slots.stop()
    await this.network.stop()
    this.unlock?.()
    this.unlock = undefined
  }

  async create(input: CreateInput): Promise<SandboxRecord> {
    parseSandboxId(input.sandboxId)
    const template = this.ctx.templates.get(parseTemplateId(input.templateId))
    const network = input.network ?? {}
    const allowInternetAccess = input.allowInternetAccess ?? null
    const policy = parseNetworkConfig(network, allowInternetAccess)
    const cpuCount = input.cpuCount || template.cpuCount
    const memoryMb = input.memoryMb || template.memoryMB
    const diskSizeMb = input.diskSizeMb || template.diskSizeMB
    if (cpuCount > this.cpuCount) {
      throw new WarrenError(
        'invalid_argument',
        `cpuCount ${cpuCount} exceeds this node's ${this.cpuCount} CPUs`,
      )
    }
    if (memoryMb < MIN_MEMORY_MB) {
      throw new WarrenError('invalid_argument', `memoryMB must be at least ${MIN_MEMORY_MB}`)
    }
    if (this.entries.has(input.sandboxId)) {
      throw new WarrenError('already_exists', `sandbox ${input.sandboxId} already exists`)
    }
    this.reserveMemory(memoryMb)
    this.entries.set(input.sandboxId, { state: 'creating' })
    try {
      const { record, slot } = await this.createLimit(() =>
        createSandbox(this.ctx, {
          sandboxId: input.sandboxId,
          template,
          cpuCount,
          memoryMb,
          diskSizeMb,
          envVars: input.envVars ?? {},
          envdAccessToken: input.envdAccessToken,
          policy,
          network,
          allowInternetAccess,
        }),
      )
      this.ctx.policies.set(input.sandboxId, record.sandboxIp ?? undefined, policy)
      this.entries.set(input.sandboxId, { state: 'running', record, slot })
      return record
    } catch (err) {
      this.entries.delete(input.sandboxId)
      this.memoryAllocated -= memoryMb
      throw err
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
    const pending = this.kills.get(sandboxId)
    if (pending) return pending
    const kill = this.locked(sandboxId, async () => {
      const entry = this.settled(sandboxId)
      const errors = await destroySandbox(this.ctx, sandboxId, entry.slot)
      this.entries.delete(sandboxId)
      this.metrics.forget(sandboxId)
      this.ctx.policies.remove(sandboxId)
      this.network.enforce(sandboxId)
      if (holdsMemory(entry.record)) this.memoryAllocated -= entry.record.memoryMb
      if (errors.length) {
        for (const err of errors) this.ctx.log.error({ err, sandboxId }, 'kill step failed')
        throw new WarrenError('internal', `sandbox ${sandboxId} was not removed cleanly`)
      }
    }).finally(() => this.kills.delete(sandboxId))
    this.kills.set(sandboxId, kill)
    return kill
  }

  /**
   * Pauses a running sandbox: its processes are frozen and its writable layer
   * flushed to disk. With `memory: false` the processes are then dropped and
   * only the files are kept; the memory and network go back to the node.
   */
  async pause(sandboxId: string, opts: { memory: boolean }): Promise<SandboxRecord> {
    const record = await this.locked(sandboxId, async () => {
      const entry = this.settled(sandboxId)
      if (entry.state !== 'running')
        throw new WarrenError('conflict', `sandbox ${sandboxId} is ${entry.state}`)
      await freeze(this.ctx, sandboxId)
      const pausedAt = new Date().toISOString()
      if (!opts.memory) return this.toFiles(entry, pausedAt)
      const paused: SandboxRecord = {
        ...entry.record,
        state: 'paused',
        pausedKind: 'memory',
        pausedAt,
      }
      writeRecord(this.ctx.cfg.dataDir, paused)
      this.entries.set(sandboxId, {
        state: 'paused',
        record: paused,
        slot: entry.slot,
        frozenBytes: this.usage(sandboxId),
      })
      return paused
    })
    if (record.pausedKind === 'memory') this.enforceFrozenBudget()
    return record
  }

  /**
   * Resumes a paused sandbox: thaws its frozen processes (hot), or boots a
   * fresh first process on its files (cold: files-only snapshots, a forced
   * reboot, frozen processes that died). Returns which one happened.
   */
  async resume(
    sandboxId: string,
    input: ResumeInput,
  ): Promise<{ record: SandboxRecord; kind: 'memory' | 'files' }> {
    return this.locked(sandboxId, async () => {
      let entry = this.settled(sandboxId)
      if (entry.state !== 'paused')
        throw new WarrenError('conflict', `sandbox ${sandboxId} is ${entry.state}`)
      if (entry.record.pausedKind === 'memory' && input.memory !== false) {
        if (await this.thaw(entry.record)) {
          const running = withoutPause(entry.record)
          writeRecord(this.ctx.cfg.dataDir, running)
          this.entries.set(sandboxId, { state: 'running', record: running, slot: entry.slot })
          return { record: running, kind: 'memory' as const }
        }
        this.ctx.log.warn({ sandboxId }, 'frozen processes lost; resuming from the files')
      }
      if (entry.record.pausedKind === 'memory') {
        await this.toFiles(entry, entry.record.pausedAt ?? new Date().toISOString())
        entry = this.settled(sandboxId)
      }
      return { record: await this.bootFromFiles(entry.record, input), kind: 'files' as const }
    })
  }

  /**
   * Thaws a frozen container. False when its processes are gone (killed
   * behind the node's back): the snapshot is then only its files.
   */
  private async thaw(record: SandboxRecord): Promise<boolean> {
    try {
      await this.ctx.runc.resume(record.containerId)
      return true
    } catch (err) {
      const status = (await this.ctx.runc.state(record.containerId))?.status
      if (status === 'paused') throw err
      // Thawed by someone else: the processes are there all the same.
      return status === 'running'
    }
  }

  /** A cold resume: memory and a network slot again, then a boot on the kept layer. */
  private async bootFromFiles(paused: SandboxRecord, input: ResumeInput): Promise<SandboxRecord> {
    const { cfg } = this.ctx
    const template = this.ctx.templates.build(paused.templateId, paused.buildId)
    const policy = policyOf(paused)
    this.reserveMemory(paused.memoryMb)
    const cleanup = new CleanupStack()
    cleanup.push('memory', () => {
      this.memoryAllocated -= paused.memoryMb
    })
    try {
      const slot = await this.ctx.slots.acquire()
      cleanup.push('network slot', () => this.ctx.slots.release(slot))
      await bootSandbox(
        this.ctx,
        {
          sandboxId: paused.sandboxId,
          template,
          cpuCount: paused.cpuCount,
          memoryMb: paused.memoryMb,
          envVars: input.envVars ?? {},
          envdAccessToken: input.envdAccessToken,
          policy,
        },
        slot,
        cleanup,
      )
      const running: SandboxRecord = {
        ...withoutPause(paused),
        slotIndex: slot.index,
        sandboxIp: slot.sandboxIp,
        hostIp: slot.hostIp,
        envdVersion: this.ctx.envd?.version ?? template.envdVersion,
      }
      writeRecord(cfg.dataDir, running)
      cleanup.release()
      this.ctx.policies.set(paused.sandboxId, slot.sandboxIp, policy)
      this.entries.set(paused.sandboxId, { state: 'running', record: running, slot })
      return running
    } catch (err) {
      // The files stay: the sandbox is still a files-only snapshot.
      await undo(this.ctx, cleanup, paused.sandboxId)
      throw asStartError(err)
    }
  }

  /** Drops a frozen or running sandbox to a files-only snapshot (under its lock). */
  private async toFiles(
    entry: Extract<Entry, { record: SandboxRecord }>,
    pausedAt: string,
  ): Promise<SandboxRecord> {
    const sandboxId = entry.record.sandboxId
    await dropToFiles(this.ctx, sandboxId, entry.slot)
    if (holdsMemory(entry.record)) this.memoryAllocated -= entry.record.memoryMb
    const files: SandboxRecord = {
      ...entry.record,
      state: 'paused',
      pausedKind: 'files',
      pausedAt,
      slotIndex: null,
      sandboxIp: null,
      hostIp: null,
    }
    writeRecord(this.ctx.cfg.dataDir, files)
    this.ctx.policies.set(sandboxId, undefined, this.policy(files))
    this.entries.set(sandboxId, { state: 'paused', record: files, slot: undefined })
    return files
  }

  /**
   * Replaces the network rules of a running sandbox. The old and the new
   * policy both apply while the kernel rules switch in one nft transaction
   * (so nothing is looser than either at any moment); a failure restores the
   * old ones. Then flows the new rules deny are cut.
   */
  async updateNetwork(
    sandboxId: string,
    network: NetworkConfig,
    allowInternetAccess: boolean | null,
  ): Promise<SandboxRecord> {
    const policy = parseNetworkConfig(network, allowInternetAccess)
    return this.locked(sandboxId, async () => {
      const entry = this.settled(sandboxId)
      if (entry.state !== 'running' || !entry.slot) {
        throw new WarrenError('conflict', `sandbox ${sandboxId} is ${entry.state}`)
      }
      const slot = entry.slot
      const old = this.policy(entry.record)
      this.ctx.policies.set(sandboxId, slot.sandboxIp, old, policy)
      try {
        await applyEgressRules(this.ctx, slot, policy.egress)
      } catch (err) {
        this.ctx.policies.set(sandboxId, slot.sandboxIp, old)
        throw new WarrenError(
          'internal',
          `could not apply the network rules: ${(err as Error).message}`,
          { cause: err },
        )
      }
      const updated: SandboxRecord = {
        ...entry.record,
        network: { ...network },
        allowInternetAccess,
      }
      writeRecord(this.ctx.cfg.dataDir, updated)
      this.ctx.policies.set(sandboxId, slot.sandboxIp, policy)
      this.entries.set(sandboxId, { ...entry, record: updated })
      this.network.enforce(sandboxId)
      await cutDeniedFlows(slot.netns, slot.sandboxIp, slot.hostIp, policy.egress).catch((err) =>
        this.ctx.log.warn({ err, sandboxId }, 'could not cut denied flows'),
      )
      return updated
    })
  }

  /**
   * Keeps the memory held by frozen sandboxes within the node's budget by
   * dropping the oldest ones to files. One pass at a time, in the background
   * of the pause that triggered it.
   */
  private enforceFrozenBudget(): void {
    this.demoting = this.demoting.then(async () => {
      const frozen = [...this.entries.values()]
        .filter(
          (e): e is Extract<Entry, { record: SandboxRecord }> =>
            e.state === 'paused' && e.record.pausedKind === 'memory',
        )
        .sort((a, b) => (a.record.pausedAt ?? '').localeCompare(b.record.pausedAt ?? ''))
      let total = frozen.reduce((n, e) => n + (e.frozenBytes ?? 0), 0)
      for (const e of frozen) {
        if (total <= this.frozenBudgetBytes) break
        const id = e.record.sandboxId
        await this.locked(id, async () => {
          const now = this.entries.get(id)
          if (now?.state !== 'paused' || now.record.pausedKind !== 'memory') return
          await this.toFiles(now, now.record.pausedAt ?? new Date().toISOString())
          this.ctx.log.info(
            { sandboxId: id },
            'frozen sandbox dropped to files (node memory policy)',
          )
        }).catch((err) =>
          this.ctx.log.error({ err, sandboxId: id }, 'could not drop a frozen sandbox to files'),
        )
        total -= e.frozenBytes ?? 0
      }
    })
  }

  /** Runs `fn` after every earlier operation on this sandbox has finished. */
  private locked<T>(sandboxId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(sandboxId) ?? Promise.resolve()
    const next = previous.catch(() => {}).then(fn)
    const tail = next.catch(() => {})
    this.locks.set(sandboxId, tail)
    void tail.then(() => {
      if (this.locks.get(sandboxId) === tail) this.locks.delete(sandboxId)
    })
    return next
  }

  /** The entry of a sandbox that is not being created; not_found otherwise. */
  private settled(sandboxId: string): Extract<Entry, { record: SandboxRecord }> {
    const entry = this.entries.get(sandboxId)
    if (!entry || entry.state === 'creating')
      throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    return entry
  }

  private reserveMemory(memoryMb: number): void {
    const free = this.ctx.cfg.memoryCapacityMb - this.memoryAllocated
    if (memoryMb > free) {
      throw new WarrenError(
        'capacity_exhausted',
        `not enough memory on this node: ${memoryMb} MB requested, ${free} MB free`,
      )
    }
    this.memoryAllocated += memoryMb
  }

  /** A settled sandbox's policy: the one in force, parsed when it was set. */
  private policy(r: SandboxRecord): NetworkPolicy {
    return this.ctx.policies.get(r.sandboxId) ?? policyOf(r)
  }

  private usage(sandboxId: string): number {
    return readCgroup(cgroupsPath(this.ctx.cfg, sandboxId)).memUsed
  }

  get(sandboxId: string): SandboxRecord {
    return this.settled(sandboxId).record
  }

  sampleMetrics(sandboxId: string): MetricsSample {
    const r = this.get(sandboxId)
    if (r.state !== 'running')
      throw new WarrenError('conflict', `sandbox ${sandboxId} is ${r.state}`)
    return this.metrics.sample(
      sandboxId,
      cgroupsPath(this.ctx.cfg, sandboxId),
      sandboxPaths(this.ctx.cfg.dataDir, sandboxId).upper,
      {
        cpuCount: r.cpuCount,
        memoryMb: r.memoryMb,
        diskSizeMb: r.diskSizeMb,
        startedAt: Date.parse(r.startedAt),
      },
    )
  }

  async logs(sandboxId: string, startMs: number, limit: number): Promise<LogLine[]> {
    this.get(sandboxId)
    return readLogLines(sandboxPaths(this.ctx.cfg.dataDir, sandboxId).log, startMs, limit)
  }

  list(): SandboxRecord[] {
    const out: SandboxRecord[] = []
    for (const e of this.entries.values()) if (e.state !== 'creating') out.push(e.record)
    return out
  }

  info() {
    return {
      nodeId: this.ctx.cfg.nodeId,
      cpuCount: this.cpuCount,
      memoryMbTotal: this.ctx.cfg.memoryCapacityMb,
      memoryMbAllocated: this.memoryAllocated,
      sandboxes: this.entries.size,
      addressesFree: this.ctx.pool.free,
    }
  }
}

/** Running and frozen sandboxes hold their memory; a files-only snapshot does not. */
function holdsMemory(r: SandboxRecord): boolean {
  return r.state === 'running' || r.pausedKind === 'memory'
}

function withoutPause(r: SandboxRecord): SandboxRecord {
  const { pausedKind: _k, pausedAt: _a, ...rest } = r
  return { ...rest, state: 'running' }
}

/** The policy a record's network config stands for (validated when it was accepted). */
function policyOf(r: SandboxRecord): NetworkPolicy {
  return parseNetworkConfig(r.network as NetworkConfig, r.allowInternetAccess)
}
