import type {
  BundleManifest,
  EgressPolicy,
  Isolation,
  NetworkConfig,
  NetworkPolicy,
} from '@warren/shared'
import type { PolicyTable } from '../network/policies.js'
import type { NetworkSlot } from '../network/slots.js'
import type { InitWatch } from '../sandboxes/init-watch.js'
import type { LogLine } from '../sandboxes/logs.js'
import type { MetricsSample, SandboxFigures } from '../sandboxes/metrics.js'
import type { ProcessIdentity } from '../sandboxes/process-probe.js'
import type { SandboxRecord } from '../sandboxes/record.js'
import type { TemplateMetadata } from '../templates/metadata.js'
import type { BuildLog, TemplateBuildSpec } from '../templates/run-build.js'
import type { BundleStore } from '../transfer/bundle-store.js'
import type { VolumeRecord } from '../volumes/record.js'
import type { VolumeMount } from '../volumes/registry.js'

/** What a node asks of the machine for one new sandbox. */
export interface CreateSpec {
  sandboxId: string
  template: TemplateMetadata
  cpuCount: number
  memoryMb: number
  diskSizeMb: number
  envVars: Record<string, string>
  envdAccessToken: string | undefined
  trafficAccessToken: string | undefined
  policy: NetworkPolicy
  network: NetworkConfig
  allowInternetAccess: boolean | null
  /** Volumes of this node bind-mounted into the sandbox (claimed by the node). */
  volumeMounts: VolumeMount[]
  isolation: Isolation
}

/**
 * A sandbox started ahead of any create with its template's defaults:
 * rootfs mounted, network slot ready, envd listening but not initialised,
 * no id. Its name (`warm-…`, never a sandbox id) names its directory,
 * container and cgroup; nothing of it is recorded, so a node start removes
 * it as debris.
 */
export interface WarmSandbox {
  name: string
  templateId: string
  buildId: string
  cpuCount: number
  memoryMb: number
  diskSizeMb: number
  slot: NetworkSlot
  /** Its first process (pid and start time), whose UTS namespace a claim renames. */
  init?: ProcessIdentity
}

export interface ResumeInput {
  envdAccessToken?: string
  envVars?: Record<string, string>
  /** false: drop any frozen processes and boot from the files (a reboot). */
  memory?: boolean
}

/** A sandbox and its network; undefined slot for a sandbox paused to files only. */
export interface Placed {
  record: SandboxRecord
  slot: NetworkSlot | undefined
  /** Adopted running whose container had died meanwhile: what the node saw. */
  exited?: string
}

/**
 * Everything a node does to its machine: containers, mounts, namespaces,
 * nftables, files. The node (node.ts) is the state machine over these steps
 * — which sandbox is in which state, what memory it holds, one operation per
 * sandbox at a time — and this is its only way to touch the host, so the
 * state machine can be tested with an in-memory stand-in.
 *
 * Each step either completes or undoes what it did and throws, unless it
 * says otherwise.
 */
export interface NodeHost {
  readonly cpuCount: number
  /** The policies in force; Warren's DNS and egress proxy read them by sandbox address. */
  readonly policies: PolicyTable
  /** The envd version new sandboxes get (undefined with a custom first process). */
  envdVersion(): string | undefined
  addressesFree(): number
  /** The isolations new sandboxes may have here (runc always; gvisor when runsc works). */
  isolations(): readonly Isolation[]

  /**
   * Prepares the host, mounts the node's volumes and adopts the sandboxes
   * that survived; releases what it took on failure.
   */
  start(): Promise<{
    adopted: Placed[]
    removed: string[]
    volumes: { ready: VolumeRecord[]; broken: VolumeRecord[] }
  }>
  /**
   * Stops the node's listeners and background work; sandboxes keep running.
   * `idle`: the node has no sandboxes, so what they share on the host goes
   * too (envd's store, the volumes' mounts).
   */
  stop(opts: { idle: boolean }): Promise<void>

  /** The template's current build, or the build named. */
  template(templateId: string, buildId?: string): TemplateMetadata
  templates(): TemplateMetadata[]
  /** Builds a template in build sandboxes; throws a BuildFailure naming the step that failed. */
  buildTemplate(
    spec: TemplateBuildSpec,
    log: BuildLog,
    signal: AbortSignal,
  ): Promise<{ metadata: TemplateMetadata; cached: number; built: number }>
  /** Removes a template but the builds in use (`templateId/buildId`); returns the layers removed. */
  deleteTemplate(templateId: string, buildsInUse: Set<string>): number
  /** Removes builds a delete kept, unless the template was made again; returns the layers removed. */
  removeBuilds(templateId: string, buildIds: string[]): number

  create(spec: CreateSpec): Promise<Placed & { slot: NetworkSlot }>
  /**
   * The part of a kill its caller waits for: marks the sandbox as tearing
   * down on disk (the next start removes it rather than adopting it), kills
   * every process of it and stops serving it (policies, proxied flows), so
   * it is stopped and unreachable. Its container, mounts, network and files
   * are left to `destroy`. False when the sandbox could not be stopped so
   * (gVisor, processes that would not go): only `destroy` stops it.
   */
  cutOff(record: SandboxRecord): Promise<boolean>
  /** Boots a warm sandbox of this template build with its defaults (runc). */
  startWarm(template: TemplateMetadata): Promise<WarmSandbox>
  /**
   * Makes a warm sandbox the create's: its id (directory, hostname), its
   * rules, envd's token and environment, its record. On failure the warm
   * sandbox is destroyed, never left to be claimed again.
   */
  claimWarm(warm: WarmSandbox, spec: CreateSpec): Promise<Placed & { slot: NetworkSlot }>
  /** Removes a warm sandbox that was never claimed; the failures are returned. */
  destroyWarm(warm: WarmSandbox): Promise<Error[]>
  /** Removes a sandbox in any state; every step runs, and the failures are returned. */
  destroy(sandboxId: string, slot: NetworkSlot | undefined): Promise<Error[]>
  /** Freezes every process and flushes the writable layer (a durable snapshot). */
  freeze(sandboxId: string): Promise<void>
  /** Thaws a frozen container; false when its processes are gone. */
  thaw(record: SandboxRecord): Promise<boolean>
  /**
   * Drops the processes and network, keeping the writable layer. Throws only
   * while the container still exists (nothing changed); a later step that
   * fails leaves debris that the next destroy or start removes. With
   * `saveProcesses`, a frozen gVisor sandbox's processes are first saved to
   * its directory when the node keeps gVisor memory (true when they were).
   */
  dropToFiles(
    sandboxId: string,
    slot: NetworkSlot | undefined,
    saveProcesses?: SandboxRecord,
  ): Promise<boolean>
  /** A cold boot on a paused sandbox's kept layer, with a new network slot. */
  bootFromFiles(
    paused: SandboxRecord,
    input: ResumeInput,
    policy: NetworkPolicy,
  ): Promise<Placed & { slot: NetworkSlot }>
  /** Loads a running sandbox's egress rules in one nft transaction. */
  applyEgress(slot: NetworkSlot, egress: EgressPolicy): Promise<void>
  /** Cuts flows and proxied connections the sandbox's policy in force no longer allows. */
  cutDeniedFlows(sandboxId: string, slot: NetworkSlot | undefined): Promise<void>
  /**
   * A template made of the sandbox's writable layer over its template's
   * layers; a running sandbox is frozen only while its layer is copied.
   */
  snapshot(
    record: SandboxRecord,
    templateId: string,
    envdAccessToken?: string,
  ): Promise<TemplateMetadata>
  saveRecord(record: SandboxRecord): void
  /** A paused sandbox's snapshot as a bundle in `store`: its layer's files and its record. */
  packSnapshot(record: SandboxRecord, store: BundleStore): Promise<BundleManifest>
  /**
   * A files-only sandbox of this node made from a snapshot bundle whose
   * files are in `store`; on failure nothing of it is left.
   */
  installSnapshot(manifest: BundleManifest, store: BundleStore): Promise<SandboxRecord>
  /** A template build as a bundle in `store`, with the layers the asker lacks (`need`). */
  packTemplate(
    meta: TemplateMetadata,
    need: Set<string>,
    store: BundleStore,
  ): Promise<BundleManifest>
  /** A template build from a bundle whose files are in `store`; the layers it has are kept. */
  installTemplate(manifest: BundleManifest, store: BundleStore): Promise<TemplateMetadata>
  /** The template layers this node holds, as template.json names them. */
  layersHeld(paths: string[]): string[]
  /** What the sandbox's disk holds now, in bytes; undefined while it is unmounted. */
  diskUsed(record: SandboxRecord): number | undefined
  /** Memory the sandbox's processes hold now, in bytes. */
  memoryInUse(sandboxId: string): number
  /** A probe of a running sandbox's first process (see ExitWatcher). */
  watchInit(sandboxId: string): Promise<InitWatch>
  sampleMetrics(record: SandboxRecord): MetricsSample
  /** The sandbox's totals and levels for Prometheus (a running or frozen sandbox). */
  figures(record: SandboxRecord): SandboxFigures
  /** Network slots built ahead of time and ready for creates. */
  readySlots(): number
  logs(sandboxId: string, startMs: number, limit: number): Promise<LogLine[]>
  /** Makes a volume's disk and mounts it on the host. */
  createVolume(record: VolumeRecord): Promise<void>
  /** Unmounts a volume and removes its files. */
  deleteVolume(volumeId: string): Promise<void>
}
