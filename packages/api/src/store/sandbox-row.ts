import {
  DEFAULT_ISOLATION,
  type Isolation,
  type NetworkConfig,
  networkConfigSchema,
  storedIsolation,
} from '@warren/shared'
import type { KillReason, PausedKind, SandboxesTable, SandboxState } from './schema.js'
import type { VolumeMountRef } from './volumes.js'

// A sandbox's record: the model the control plane works with, and its
// mapping to and from the store's row.

export interface Lifecycle {
  onTimeout: 'kill' | 'pause'
  autoResume: boolean
  /** A timeout pause keeps the processes (true) or only the files. */
  autoPauseMemory: boolean
  keepaliveTraffic: boolean
}

/** A sandbox as the control plane knows it. */
export interface Sandbox {
  sandboxId: string
  teamId: string
  templateId: string
  nodeId: string
  state: SandboxState
  version: number
  createdAt: number
  startedAt: number
  endAt: number
  timeoutS: number
  metadata: Record<string, string>
  envVars: Record<string, string>
  envdVersion: string
  envdAccessToken: string | null
  trafficAccessToken: string | null
  cpuCount: number
  memoryMb: number
  diskSizeMb: number
  lifecycle: Lifecycle
  network: NetworkConfig
  allowInternetAccess: boolean | null
  address: string | null
  killReason: KillReason | null
  killedAt: number | null
  pausedKind: PausedKind | null
  pausedAt: number | null
  /** Paused with memory: false on request: only an explicit resume may wake it. */
  filesOnly: boolean
  /** How the last resume went: frozen processes continued, or a boot on the files. */
  resumedFrom: PausedKind | null
  /** The replica finishing a transitional state; null when the sandbox is settled. */
  owner: string | null
  /** Volumes mounted into the sandbox (they are on its node). */
  volumeMounts: VolumeMountRef[]
  /**
   * The cluster of its node, fixed at create: a remote cluster's name, or
   * null for the API's own. Only that cluster's edges and nodes see it.
   */
  cluster: string | null
  /** Its runtime, fixed at create: a move, fork or snapshot keeps it. */
  isolation: Isolation
}

/** States that hold a node's resources and count against the team's limit. */
export const ACTIVE_STATES: SandboxState[] = ['creating', 'running', 'pausing', 'resuming']

export type Row = Omit<SandboxesTable, 'version'> & { version: number }

export function toSandbox(r: Row): Sandbox {
  return {
    sandboxId: r.id,
    teamId: r.team_id,
    templateId: r.template_id,
    nodeId: r.node_id,
    state: r.state,
    version: Number(r.version),
    createdAt: Number(r.created_at),
    startedAt: Number(r.started_at),
    endAt: Number(r.end_at),
    timeoutS: r.timeout_s,
    metadata: JSON.parse(r.metadata),
    envVars: JSON.parse(r.env_vars),
    envdVersion: r.envd_version,
    envdAccessToken: r.envd_access_token,
    trafficAccessToken: r.traffic_access_token,
    cpuCount: r.cpu_count,
    memoryMb: r.memory_mb,
    diskSizeMb: r.disk_size_mb,
    lifecycle: JSON.parse(r.lifecycle),
    network: networkConfigSchema.parse(JSON.parse(r.network)),
    allowInternetAccess: r.allow_internet_access === null ? null : !!r.allow_internet_access,
    address: r.address,
    killReason: r.kill_reason,
    killedAt: r.killed_at === null ? null : Number(r.killed_at),
    pausedKind: r.paused_kind,
    pausedAt: r.paused_at === null ? null : Number(r.paused_at),
    filesOnly: !!r.files_only,
    resumedFrom: r.resumed_from,
    owner: r.owner,
    volumeMounts: JSON.parse(r.volume_mounts),
    cluster: r.cluster,
    isolation: storedIsolation(r.isolation) ?? DEFAULT_ISOLATION,
  }
}

/** The columns a transition may set, in the model's terms. */
export type SandboxPatch = Partial<
  Pick<
    Sandbox,
    | 'state'
    | 'nodeId'
    | 'startedAt'
    | 'endAt'
    | 'timeoutS'
    | 'envdVersion'
    | 'cpuCount'
    | 'memoryMb'
    | 'diskSizeMb'
    | 'address'
    | 'killReason'
    | 'killedAt'
    | 'network'
    | 'lifecycle'
    | 'pausedKind'
    | 'pausedAt'
    | 'filesOnly'
    | 'resumedFrom'
    | 'allowInternetAccess'
    | 'owner'
  >
>

export function toColumns(p: SandboxPatch): Partial<SandboxesTable> {
  const c: Partial<SandboxesTable> = {}
  if (p.state !== undefined) c.state = p.state
  if (p.nodeId !== undefined) c.node_id = p.nodeId
  if (p.startedAt !== undefined) c.started_at = p.startedAt
  if (p.endAt !== undefined) c.end_at = p.endAt
  if (p.timeoutS !== undefined) c.timeout_s = p.timeoutS
  if (p.envdVersion !== undefined) c.envd_version = p.envdVersion
  if (p.cpuCount !== undefined) c.cpu_count = p.cpuCount
  if (p.memoryMb !== undefined) c.memory_mb = p.memoryMb
  if (p.diskSizeMb !== undefined) c.disk_size_mb = p.diskSizeMb
  if (p.address !== undefined) c.address = p.address
  if (p.killReason !== undefined) c.kill_reason = p.killReason
  if (p.killedAt !== undefined) c.killed_at = p.killedAt
  if (p.network !== undefined) c.network = JSON.stringify(p.network)
  if (p.lifecycle !== undefined) c.lifecycle = JSON.stringify(p.lifecycle)
  if (p.pausedKind !== undefined) c.paused_kind = p.pausedKind
  if (p.pausedAt !== undefined) c.paused_at = p.pausedAt
  if (p.filesOnly !== undefined) c.files_only = Number(p.filesOnly)
  if (p.resumedFrom !== undefined) c.resumed_from = p.resumedFrom
  if (p.owner !== undefined) c.owner = p.owner
  if (p.allowInternetAccess !== undefined) {
    c.allow_internet_access = p.allowInternetAccess === null ? null : Number(p.allowInternetAccess)
  }
  return c
}
