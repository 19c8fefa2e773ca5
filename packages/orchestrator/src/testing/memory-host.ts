import { Readable } from 'node:stream'
import { type BundleManifest, type Isolation, WarrenError } from '@warren/shared'
import type { CreateSpec, NodeHost, Placed, WarmSandbox } from '../host/node-host.js'
import { AddressPool } from '../network/address-pool.js'
import { netnsNames } from '../network/netns.js'
import { PolicyTable } from '../network/policies.js'
import type { NetworkSlot } from '../network/slots.js'
import type { SandboxFigures } from '../sandboxes/metrics.js'
import type { SandboxRecord } from '../sandboxes/record.js'
import { sandboxRecordSchema } from '../sandboxes/record.js'
import type { TemplateMetadata } from '../templates/metadata.js'
import type { BundleStore } from '../transfer/bundle-store.js'
import type { VolumeRecord } from '../volumes/record.js'

/** The steps of a host that a test can delay or make fail. */
export type Step =
  | 'create'
  | 'cutOff'
  | 'startWarm'
  | 'claimWarm'
  | 'destroyWarm'
  | 'destroy'
  | 'freeze'
  | 'thaw'
  | 'dropToFiles'
  | 'bootFromFiles'
  | 'applyEgress'
  | 'createVolume'
  | 'deleteVolume'

type Container = 'running' | 'frozen' | 'gone'

export const BASE_TEMPLATE: TemplateMetadata = {
  templateId: 'base',
  buildId: 'b1',
  builtAt: '2026-01-01T00:00:00.000Z',
  cpuCount: 1,
  memoryMB: 512,
  diskSizeMB: 1024,
  defaultUser: 'user',
  defaultWorkdir: '/home/user',
  envdVersion: '0.6.4',
  uidBase: 100000,
  noNewPrivileges: false,
  pidsLimit: 1024,
}

/**
 * An in-memory NodeHost for unit tests of the node's state machine: it keeps
 * what a real host would have (containers, slots, records, applied rules),
 * records every step it is asked for, and lets a test hold a step at a
 * barrier or make it fail.
 */
export class MemoryHost implements NodeHost {
  readonly cpuCount = 4
  readonly policies = new PolicyTable()
  readonly calls: string[] = []
  readonly containers = new Map<string, Container>()
  readonly records = new Map<string, SandboxRecord>()
  /** Egress rules loaded per sandbox address. */
  readonly applied = new Map<string, unknown>()
  readonly slotsInUse = new Set<number>()
  /** Volumes whose disks exist, by id. */
  readonly volumes = new Map<string, VolumeRecord>()
  adopt: Placed[] = []
  private readonly pool: AddressPool

  /** `pool`: the addresses it hands out (a small one runs out soon). */
  constructor(pool = '10.99.0.0/24') {
    this.pool = new AddressPool(pool)
  }
  private readonly hooks = new Map<Step, Array<(sandboxId: string) => Promise<void> | void>>()

  /** Runs `fn` (once) when the step next starts; it may wait or throw. */
  on(step: Step, fn: (sandboxId: string) => Promise<void> | void): void {
    this.hooks.set(step, [...(this.hooks.get(step) ?? []), fn])
  }

  /** The next run of `step` fails with `message` (before it changes anything). */
  failNext(step: Step, message = `${step} failed`): void {
    this.on(step, () => {
      throw new Error(message)
    })
  }

  private async step(step: Step, sandboxId: string): Promise<void> {
    this.calls.push(`${step} ${sandboxId}`)
    const fn = this.hooks.get(step)?.shift()
    if (fn) await fn(sandboxId)
  }

  envdVersion = () => '0.6.4'
  addressesFree = () => this.pool.free
  /** What this stand-in offers; a test may take gvisor away. */
  offered: Isolation[] = ['runc', 'gvisor']
  isolations = () => this.offered

  async start() {
    return {
      adopted: this.adopt,
      removed: [],
      volumes: { ready: [...this.volumes.values()], broken: [] },
    }
  }
  async stop(_opts: { idle: boolean }) {}

  buildTemplate(): never {
    throw new WarrenError('unavailable', 'the in-memory host builds no templates')
  }

  deleteTemplate(): never {
    throw new WarrenError('unavailable', 'the in-memory host deletes no templates')
  }

  removeBuilds(): never {
    throw new WarrenError('unavailable', 'the in-memory host deletes no templates')
  }

  template(templateId: string, buildId?: string): TemplateMetadata {
    if (templateId !== 'base')
      throw new WarrenError('not_found', `template '${templateId}' not found`)
    if (buildId !== undefined && buildId !== BASE_TEMPLATE.buildId)
      throw new WarrenError('not_found', `build ${buildId} of template 'base' is gone`)
    return BASE_TEMPLATE
  }
  templates = () => [BASE_TEMPLATE]

  private newSlot(): NetworkSlot {
    const addr = this.pool.acquire()
    this.slotsInUse.add(addr.index)
    return { ...addr, ...netnsNames('tm', addr.index) }
  }

  private releaseSlot(slot: NetworkSlot | undefined): void {
    if (!slot) return
    this.slotsInUse.delete(slot.index)
    this.pool.release(slot.index)
  }

  async create(spec: CreateSpec, claimed?: NetworkSlot) {
    if (!claimed) await this.step('create', spec.sandboxId)
    const slot = claimed ?? this.newSlot()
    const record: SandboxRecord = {
      sandboxId: spec.sandboxId,
      templateId: spec.template.templateId,
      buildId: spec.template.buildId,
      containerId: `tm-${spec.sandboxId}`,
      slotIndex: slot.index,
      sandboxIp: slot.sandboxIp,
      hostIp: slot.hostIp,
      cpuCount: spec.cpuCount,
      memoryMb: spec.memoryMb,
      diskSizeMb: spec.diskSizeMb,
      startedAt: new Date().toISOString(),
      envdVersion: '0.6.4',
      state: 'running',
      network: { ...spec.network },
      allowInternetAccess: spec.allowInternetAccess,
      volumeMounts: spec.volumeMounts,
      isolation: spec.isolation,
    }
    this.containers.set(spec.sandboxId, 'running')
    this.records.set(spec.sandboxId, record)
    return { record, slot }
  }

  /** Sandboxes cut off by a kill whose destroy has not run yet. */
  readonly tearingDown = new Set<string>()

  async cutOff(record: SandboxRecord) {
    await this.step('cutOff', record.sandboxId)
    // gVisor sandboxes are stopped by their destroy, as on the machine host.
    if (record.isolation !== 'runc') return false
    this.containers.set(record.sandboxId, 'gone')
    this.policies.remove(record.sandboxId)
    this.tearingDown.add(record.sandboxId)
    return true
  }

  /** Warm sandboxes started and not yet claimed or destroyed, by name. */
  readonly warm = new Map<string, WarmSandbox>()
  private warmCount = 0

  async startWarm(template: TemplateMetadata): Promise<WarmSandbox> {
    const name = `warm-${++this.warmCount}`
    await this.step('startWarm', name)
    const warm: WarmSandbox = {
      name,
      templateId: template.templateId,
      buildId: template.buildId,
      cpuCount: template.cpuCount,
      memoryMb: template.memoryMB,
      diskSizeMb: template.diskSizeMB,
      slot: this.newSlot(),
    }
    this.warm.set(name, warm)
    this.containers.set(name, 'running')
    return warm
  }

  async claimWarm(warm: WarmSandbox, spec: CreateSpec) {
    if (!this.warm.delete(warm.name)) throw new Error(`${warm.name} claimed twice or destroyed`)
    try {
      await this.step('claimWarm', `${warm.name} ${spec.sandboxId}`)
    } catch (err) {
      this.containers.delete(warm.name)
      this.releaseSlot(warm.slot)
      throw err
    }
    this.containers.delete(warm.name)
    const { record } = await this.create(spec, warm.slot)
    return { record: { ...record, hostName: warm.name }, slot: warm.slot }
  }

  async destroyWarm(warm: WarmSandbox) {
    await this.step('destroyWarm', warm.name)
    this.warm.delete(warm.name)
    this.containers.delete(warm.name)
    this.releaseSlot(warm.slot)
    return []
  }

  async destroy(sandboxId: string, slot: NetworkSlot | undefined) {
    await this.step('destroy', sandboxId)
    this.containers.delete(sandboxId)
    this.records.delete(sandboxId)
    this.tearingDown.delete(sandboxId)
    this.releaseSlot(slot)
    this.policies.remove(sandboxId)
    return []
  }

  async freeze(sandboxId: string) {
    await this.step('freeze', sandboxId)
    this.containers.set(sandboxId, 'frozen')
  }

  async thaw(record: SandboxRecord) {
    await this.step('thaw', record.sandboxId)
    const c = this.containers.get(record.sandboxId)
    if (c !== 'frozen') return c === 'running'
    this.containers.set(record.sandboxId, 'running')
    return true
  }

  async dropToFiles(sandboxId: string, slot: NetworkSlot | undefined) {
    await this.step('dropToFiles', sandboxId)
    this.containers.set(sandboxId, 'gone')
    this.releaseSlot(slot)
    return false
  }

  async bootFromFiles(paused: SandboxRecord) {
    await this.step('bootFromFiles', paused.sandboxId)
    const slot = this.newSlot()
    const { pausedKind: _k, pausedAt: _a, ...rest } = paused
    const record: SandboxRecord = {
      ...rest,
      state: 'running',
      slotIndex: slot.index,
      sandboxIp: slot.sandboxIp,
      hostIp: slot.hostIp,
    }
    this.containers.set(paused.sandboxId, 'running')
    this.records.set(paused.sandboxId, record)
    return { record, slot }
  }

  async applyEgress(slot: NetworkSlot, egress: unknown) {
    await this.step('applyEgress', slot.sandboxIp)
    this.applied.set(slot.sandboxIp, egress)
  }

  async cutDeniedFlows(sandboxId: string) {
    this.calls.push(`cutDeniedFlows ${sandboxId}`)
  }

  async snapshot(record: SandboxRecord, templateId: string): Promise<TemplateMetadata> {
    this.calls.push(`snapshot ${record.sandboxId}`)
    return { ...BASE_TEMPLATE, templateId, layers: [`layers/${record.sandboxId}`] }
  }

  /** The record stands in for the layer: one blob of its JSON. */
  async packSnapshot(record: SandboxRecord, store: BundleStore): Promise<BundleManifest> {
    this.calls.push(`pack ${record.sandboxId}`)
    const file = await store.put(Readable.from([Buffer.from(JSON.stringify(record))]), 'upper.tar')
    const manifest: BundleManifest = {
      version: 1,
      kind: 'sandbox',
      id: record.sandboxId,
      createdAt: new Date().toISOString(),
      metadata: record,
      files: [file],
    }
    await store.writeManifest(manifest)
    return manifest
  }

  async installSnapshot(manifest: BundleManifest, _store: BundleStore): Promise<SandboxRecord> {
    this.calls.push(`install ${manifest.id}`)
    const record: SandboxRecord = {
      ...sandboxRecordSchema.parse(manifest.metadata),
      state: 'paused',
      pausedKind: 'files',
      slotIndex: null,
      sandboxIp: null,
      hostIp: null,
    }
    this.records.set(record.sandboxId, record)
    return record
  }

  async packTemplate(meta: TemplateMetadata): Promise<BundleManifest> {
    return {
      version: 1,
      kind: 'template',
      id: `${meta.templateId}/${meta.buildId}`,
      createdAt: new Date().toISOString(),
      metadata: { template: meta, layers: [] },
      files: [],
    }
  }

  async installTemplate(manifest: BundleManifest): Promise<TemplateMetadata> {
    this.calls.push(`installTemplate ${manifest.id}`)
    return (manifest.metadata as { template: TemplateMetadata }).template
  }

  layersHeld = (paths: string[]) => paths

  saveRecord(record: SandboxRecord): void {
    this.records.set(record.sandboxId, record)
  }

  memoryInUse = () => 100 * 2 ** 20

  /** The container's processes run until a test marks it 'gone'. */
  async watchInit(sandboxId: string) {
    return {
      alive: () => this.containers.get(sandboxId) === 'running',
      exit: () => ({ detail: "the sandbox's first process exited", oom: false }),
    }
  }
  diskUsed = () => 4096

  sampleMetrics(r: SandboxRecord) {
    return {
      timestamp: Date.now(),
      cpuCount: r.cpuCount,
      cpuUsedPct: 0,
      memUsed: 0,
      memTotal: r.memoryMb * 2 ** 20,
      memCache: 0,
      diskUsed: 0,
      diskTotal: r.diskSizeMb * 2 ** 20,
    }
  }

  /** Figures a test sets per sandbox; zeros otherwise. */
  readonly figuresOf = new Map<string, Partial<SandboxFigures>>()
  figures(r: SandboxRecord): SandboxFigures {
    return {
      cpuSeconds: 0,
      memoryBytes: 0,
      memoryLimitBytes: r.memoryMb * 2 ** 20,
      diskUsedBytes: 0,
      diskTotalBytes: r.diskSizeMb * 2 ** 20,
      networkReceiveBytes: 0,
      networkTransmitBytes: 0,
      ...this.figuresOf.get(r.sandboxId),
    }
  }
  readySlots = () => 0

  async logs() {
    return []
  }

  async createVolume(record: VolumeRecord) {
    await this.step('createVolume', record.volumeId)
    this.volumes.set(record.volumeId, record)
  }

  async deleteVolume(volumeId: string) {
    await this.step('deleteVolume', volumeId)
    this.volumes.delete(volumeId)
  }
}

/** A promise a test resolves by hand, to hold a host step at a point. */
export function barrier(): { wait: Promise<void>; open: () => void } {
  let open!: () => void
  const wait = new Promise<void>((resolve) => {
    open = resolve
  })
  return { wait, open }
}
