import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  cidrContains,
  createLogger,
  ipv4ToInt,
  isSandboxId,
  type Logger,
  type OrchestratorConfig,
  parseTemplateId,
  WarrenError,
} from '@warren/shared'
import pLimit from 'p-limit'
import { cgroupsPath, type NodeContext } from './context.js'
import { AddressPool } from './network/address-pool.js'
import { hostIpv4Addresses } from './network/netns.js'
import { applyOnHost, renderHostTable, renderSandboxTable } from './network/nftables.js'
import { type NetworkSlot, NetworkSlots } from './network/slots.js'
import { acquirePidLock } from './pid-lock.js'
import { Runc } from './runtime/runc.js'
import { createSandbox } from './sandboxes/create.js'
import { destroySandbox } from './sandboxes/destroy.js'
import { type LogLine, readLogLines } from './sandboxes/logs.js'
import { type MetricsSample, MetricsSampler } from './sandboxes/metrics.js'
import { reconcile } from './sandboxes/reconcile.js'
import { type SandboxRecord, sandboxPaths } from './sandboxes/record.js'
import { TemplateRegistry } from './templates/registry.js'

export interface CreateInput {
  sandboxId: string
  templateId: string
  cpuCount?: number
  memoryMb?: number
  diskSizeMb?: number
  envVars?: Record<string, string>
  envdAccessToken?: string
}

type Entry =
  | { state: 'creating'; memoryMb: number }
  | { state: 'running' | 'paused'; record: SandboxRecord; slot: NetworkSlot }
  | { state: 'killing'; record: SandboxRecord; slot: NetworkSlot; done: Promise<void> }

const MIN_MEMORY_MB = 64

/**
 * The sandboxes of one node. Every state change of an entry happens
 * synchronously between awaits, so checks and updates cannot interleave: two
 * creates of one id, or a kill racing a kill, have one winner.
 */
export class SandboxNode {
  readonly ctx: NodeContext
  private readonly entries = new Map<string, Entry>()
  private memoryAllocated = 0
  private readonly createLimit: ReturnType<typeof pLimit>
  private unlock: (() => void) | undefined
  private readonly hostAddresses: string[]
  private readonly metrics = new MetricsSampler()

  constructor(cfg: OrchestratorConfig, log: Logger = createLogger('orchestrator')) {
    const templatesDir = cfg.templatesDir ?? join(cfg.dataDir, 'templates')
    const pool = new AddressPool(cfg.addressPool)
    const hostAddresses: string[] = []
    const slots = new NetworkSlots({
      prefix: cfg.prefix,
      pool,
      target: cfg.warmNetworkSlots,
      log,
      baseTable: (slot) =>
        renderSandboxTable({
          hostIp: slot.hostIp,
          sandboxIp: slot.sandboxIp,
          hostAddresses,
          pool: cfg.addressPool,
          services: {},
        }),
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
    }
    this.hostAddresses = hostAddresses
    this.createLimit = pLimit(cfg.maxConcurrentCreates)
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
    this.ctx.envd = cfg.sandboxCommand ? undefined : loadEnvd(cfg)
    const pool = this.ctx.pool
    this.hostAddresses.push(
      ...(await hostIpv4Addresses()).filter((a) => !cidrContains(pool.cidr, ipv4ToInt(a))),
    )
    // Sandboxes reach the world through this host: it must route.
    writeFileSync('/proc/sys/net/ipv4/ip_forward', '1')
    await applyOnHost(renderHostTable({ prefix: cfg.prefix, pool: cfg.addressPool, services: [] }))

    const { adopted, removed } = await reconcile(this.ctx)
    for (const { record, slot } of adopted) {
      this.entries.set(record.sandboxId, { state: record.state, record, slot })
      this.memoryAllocated += record.memoryMb
    }
    log.info({ adopted: adopted.length, removed: removed.length }, 'node reconciled')
    this.ctx.slots.fill()
    return { adopted: adopted.length, removed: removed.length }
  }

  /** Stops background work. Sandboxes keep running and are adopted by the next start. */
  async stop(): Promise<void> {
    await this.ctx.slots.stop()
    this.unlock?.()
    this.unlock = undefined
  }

  async create(input: CreateInput): Promise<SandboxRecord> {
    const { cfg } = this.ctx
    if (!isSandboxId(input.sandboxId)) {
      throw new WarrenError(
        'invalid_argument',
        `invalid sandbox id '${input.sandboxId.slice(0, 64)}'`,
      )
    }
    const template = this.ctx.templates.get(parseTemplateId(input.templateId))
    const cpuCount = input.cpuCount || template.cpuCount
    const memoryMb = input.memoryMb || template.memoryMB
    const diskSizeMb = input.diskSizeMb || template.diskSizeMB
    if (cpuCount > cpus().length) {
      throw new WarrenError(
        'invalid_argument',
        `cpuCount ${cpuCount} exceeds this node's ${cpus().length} CPUs`,
      )
    }
    if (memoryMb < MIN_MEMORY_MB) {
      throw new WarrenError('invalid_argument', `memoryMB must be at least ${MIN_MEMORY_MB}`)
    }
    if (this.entries.has(input.sandboxId)) {
      throw new WarrenError('already_exists', `sandbox ${input.sandboxId} already exists`)
    }
    if (this.memoryAllocated + memoryMb > cfg.memoryCapacityMb) {
      throw new WarrenError(
        'capacity_exhausted',
        `not enough memory on this node: ${memoryMb} MB requested, ${cfg.memoryCapacityMb - this.memoryAllocated} MB free`,
      )
    }
    this.entries.set(input.sandboxId, { state: 'creating', memoryMb })
    this.memoryAllocated += memoryMb
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
        }),
      )
      this.entries.set(input.sandboxId, { state: 'running', record, slot })
      return record
    } catch (err) {
      this.entries.delete(input.sandboxId)
      this.memoryAllocated -= memoryMb
      throw err
    }
  }

  async kill(sandboxId: string): Promise<void> {
    const entry = this.entries.get(sandboxId)
    if (!entry) throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    if (entry.state === 'creating') {
      throw new WarrenError('conflict', `sandbox ${sandboxId} is still being created`)
    }
    if (entry.state === 'killing') return entry.done
    const done = (async () => {
      const errors = await destroySandbox(this.ctx, sandboxId, entry.slot)
      this.entries.delete(sandboxId)
      this.metrics.forget(sandboxId)
      this.memoryAllocated -= entry.record.memoryMb
      if (errors.length) {
        for (const err of errors) this.ctx.log.error({ err, sandboxId }, 'kill step failed')
        throw new WarrenError('internal', `sandbox ${sandboxId} was not removed cleanly`)
      }
    })()
    this.entries.set(sandboxId, { state: 'killing', record: entry.record, slot: entry.slot, done })
    return done
  }

  get(sandboxId: string): SandboxRecord {
    const entry = this.entries.get(sandboxId)
    if (!entry || entry.state === 'creating' || entry.state === 'killing') {
      throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    }
    return entry.record
  }

  sampleMetrics(sandboxId: string): MetricsSample {
    const r = this.get(sandboxId)
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
    for (const e of this.entries.values())
      if (e.state === 'running' || e.state === 'paused') out.push(e.record)
    return out
  }

  info() {
    return {
      nodeId: this.ctx.cfg.nodeId,
      cpuCount: cpus().length,
      memoryMbTotal: this.ctx.cfg.memoryCapacityMb,
      memoryMbAllocated: this.memoryAllocated,
      sandboxes: this.entries.size,
      addressesFree: this.ctx.pool.free,
    }
  }
}

function loadEnvd(cfg: OrchestratorConfig): { dir: string; version: string } {
  const dir = cfg.envdDir ?? fileURLToPath(new URL('../../envd/dist/bundle', import.meta.url))
  const versionFile = join(dir, 'version.json')
  if (!existsSync(versionFile)) {
    throw new WarrenError('unavailable', `envd bundle not found in ${dir} (run the build)`)
  }
  const { version } = JSON.parse(readFileSync(versionFile, 'utf8')) as { version: string }
  return { dir, version }
}
