import type { Generated } from 'kysely'

/** Table types of the store. Times are integer milliseconds since the epoch. */
export interface Database {
  teams: TeamsTable
  api_keys: ApiKeysTable
  sandboxes: SandboxesTable
  templates: TemplatesTable
  template_aliases: TemplateAliasesTable
  template_tags: TemplateTagsTable
  template_builds: TemplateBuildsTable
  template_build_logs: TemplateBuildLogsTable
  template_files: TemplateFilesTable
  replicas: ReplicasTable
  leases: LeasesTable
  volumes: VolumesTable
  sandbox_volume_mounts: SandboxVolumeMountsTable
  clusters: ClustersTable
  events: EventsTable
  webhooks: WebhooksTable
  webhook_deliveries: WebhookDeliveriesTable
}

/**
 * A remote cluster (`warren cluster add`): its own nodes and edge proxies,
 * which present its secret. Only the secret's sha256 is kept. The API's own
 * cluster (WARREN_CLUSTER_NAME, its configured secret) has no row.
 */
export interface ClustersTable {
  name: string
  secret_hash: string
  created_at: number
}

/** One settled change of a sandbox (migrations-events.ts: its position is `(tx, id)`). */
export interface EventsTable {
  id: Generated<number>
  /** The writing transaction (PostgreSQL); 0 on SQLite. */
  tx: Generated<number>
  team_id: string
  sandbox_id: string
  kind: string
  at: number
  /** JSON: the event as readers receive it, without its id. */
  data: string
}

/** A team's webhook: deliveries of the kinds it names go to its URL, signed with its secret. */
export interface WebhooksTable {
  id: string
  team_id: string
  url: string
  /** The HMAC key of the signatures; needed in the clear to sign (the store is root's only). */
  secret: string
  /** JSON: the event kinds delivered. */
  kinds: string
  created_at: number
}

/** pending: not yet delivered (maybe retrying, maybe claimed); then delivered or failed (gave up). */
export type DeliveryState = 'pending' | 'delivered' | 'failed'

export interface WebhookDeliveriesTable {
  id: Generated<number>
  webhook_id: string
  event_id: string
  sandbox_id: string
  /** The exact body sent (and signed). */
  payload: string
  state: DeliveryState
  attempts: Generated<number>
  /** Not tried before this time (the backoff). */
  next_at: number
  /** The replica delivering it now, until `claimed_until`. */
  claimed_by: string | null
  claimed_until: number | null
  last_status: number | null
  last_error: string | null
  created_at: number
  finished_at: number | null
}

/** A running API process; its heartbeat (store time) says it is alive. */
export interface ReplicasTable {
  id: string
  host: string
  pid: number
  started_at: number
  heartbeat_at: number
}

/** Periodic work one replica at a time does (node sync, tombstone purge). */
export interface LeasesTable {
  name: string
  holder: string
  expires_at: number
}

/** creating: its node is making it; deleting: its node is removing it. */
export type VolumeState = 'creating' | 'ready' | 'deleting'

/** A team's volume: a disk on one node. Names are unique within a team. */
export interface VolumesTable {
  id: string
  team_id: string
  name: string
  node_id: string
  size_mb: number
  /** The bearer token of the volume's content API (E2B returns it on every get). */
  token: string
  state: VolumeState
  /** Bumped by every change: a create that mounts the volume bumps it too (see store/volumes). */
  version: Generated<number>
  created_at: number
}

/** Which sandbox mounts which volume (one row each; gone with the sandbox's row). */
export interface SandboxVolumeMountsTable {
  sandbox_id: string
  volume_id: string
}

/** A team's template; its files live on the nodes under the same id. */
export interface TemplatesTable {
  id: string
  team_id: string
  created_at: number
  updated_at: number
  /** The last build that became ready. */
  build_id: string | null
  /** build: from /v3/templates; snapshot, fork: a sandbox's files. */
  kind: Generated<TemplateKind>
  source_sandbox_id: string | null
  /** What its sandboxes run under unless a create names one; null: runc. */
  isolation: Generated<string | null>
}

export type TemplateKind = 'build' | 'snapshot' | 'fork'

/** A template's name (E2B's alias), unique within its team. */
export interface TemplateAliasesTable {
  team_id: string
  alias: string
  template_id: string
}

export interface TemplateTagsTable {
  template_id: string
  tag: string
  build_id: string
  created_at: number
}

/** pending: requested, not started; waiting: queued on a node; then building, ready or error. */
export type BuildStatus = 'pending' | 'waiting' | 'building' | 'ready' | 'error'

export interface TemplateBuildsTable {
  id: string
  template_id: string
  team_id: string
  status: BuildStatus
  created_at: number
  updated_at: number
  finished_at: number | null
  cpu_count: number
  memory_mb: number
  disk_size_mb: number
  /** JSON: tags to assign once ready. */
  tags: string
  node_id: string | null
  envd_version: string | null
  reason_message: string | null
  reason_step: string | null
  /** The replica streaming the build from its node (waiting, building). */
  owner: string | null
}

export interface TemplateBuildLogsTable {
  build_id: string
  /** 0, 1, 2… per build: what logsOffset counts. */
  seq: number
  at: number
  level: string
  message: string
  step: string | null
}

/** A COPY step's uploaded files archive, by the client's files hash, per team. */
export interface TemplateFilesTable {
  team_id: string
  hash: string
  size: number
  created_at: number
}

export interface TeamsTable {
  id: string
  name: string
  max_concurrent: number
  max_lifetime_s: number
  /** Memory (MB) its active sandboxes may hold together; null: no limit. */
  max_memory_mb: number | null
  /** Templates it may have (snapshots not counted); null: no limit. */
  max_templates: number | null
  /** The isolation every new sandbox of the team must have; null: any. */
  required_isolation: Generated<string | null>
  created_at: number
}

export interface ApiKeysTable {
  id: string
  team_id: string
  name: string
  /** sha256 of the key, hex; the key itself is never stored. */
  key_hash: string
  /** `e2b_1234…abcd`: enough to recognise a key in a list. */
  key_mask: string
  created_at: number
  last_used_at: number | null
  revoked_at: number | null
  /** 1: may use the admin API (teams, their keys and limits, nodes). */
  admin: Generated<number>
}

export type SandboxState =
  | 'creating'
  | 'running'
  | 'pausing'
  | 'paused'
  | 'resuming'
  | 'killing'
  | 'killed'

/**
 * Why a sandbox was killed, kept on its tombstone: `request` (a kill through
 * the API), `timeout` (its endAt passed, lifecycle onTimeout kill), `orphaned`
 * (its node no longer has it, or the API restarted in the middle of a create),
 * `node_lost` (its node was silent past the grace period), `exited` (its
 * container's first process exited), `oom_killed` (the kernel killed the
 * sandbox for its memory),
 * `drained` (its node was drained by an operator).
 */
export type KillReason =
  | 'request'
  | 'timeout'
  | 'orphaned'
  | 'node_lost'
  | 'exited'
  | 'oom_killed'
  | 'drained'

export interface SandboxesTable {
  id: string
  team_id: string
  template_id: string
  node_id: string
  state: SandboxState
  /** Bumped by every transition: the compare-and-set token. */
  version: Generated<number>
  created_at: number
  started_at: number
  end_at: number
  timeout_s: number
  metadata: string
  env_vars: string
  envd_version: string
  envd_access_token: string | null
  traffic_access_token: string | null
  cpu_count: number
  memory_mb: number
  disk_size_mb: number
  /** JSON: onTimeout, autoResume, keepalive. */
  lifecycle: string
  /** JSON: the network config as accepted. */
  network: string
  allow_internet_access: number | null
  address: string | null
  kill_reason: KillReason | null
  killed_at: number | null
  paused_kind: PausedKind | null
  paused_at: number | null
  files_only: number | null
  resumed_from: PausedKind | null
  /** The replica finishing a transitional state (creating, pausing, resuming, killing). */
  owner: string | null
  /** JSON: [{volumeId, name, path}]. */
  volume_mounts: string
  /** The remote cluster whose nodes the sandbox lives on; null: the API's own cluster. */
  cluster: string | null
  /** runc or gvisor; null: runc (a row made before isolations were recorded). */
  isolation: string | null
}

export type PausedKind = 'memory' | 'files'
