import {
  type Isolation,
  type NetworkConfig,
  networkConfigToMessage,
  newSandboxId,
  newToken,
  WarrenError,
} from '@warren/shared'
import { isolationUnavailable, type NodeState, type Placement } from '../placement/nodes.js'
import {
  deleteSandbox,
  insertCreating,
  type Lifecycle,
  type Sandbox,
  transition,
} from '../store/sandboxes.js'
import type { Team } from '../store/teams.js'
import type { VolumeMountRef } from '../store/volumes.js'
import { KIND, type LifecycleCore } from './core.js'
import { endAfter } from './lease.js'
import { templateSource } from './move.js'

export interface CreateSandboxRequest {
  templateId: string
  /** The build a `name:tag` names; absent: the template's current build. */
  buildId?: string
  timeoutS: number
  metadata: Record<string, string>
  envVars: Record<string, string>
  /** Secure sandboxes get an envd access token that every envd call must carry. */
  secure: boolean
  lifecycle: Lifecycle
  network: NetworkConfig
  allowInternetAccess: boolean | null
  /** 0: the template's default. */
  resources?: { cpuCount: number; memoryMb: number; diskSizeMb: number }
  /** Volumes to mount, all on one node. */
  volumeMounts: VolumeMountRef[]
  /** The node the sandbox must go to (its volumes'), if any. */
  nodeId?: string | undefined
  /** Only nodes offering it are candidates, never a silent other. */
  isolation: Isolation
  /** The cluster whose nodes may take it: a remote cluster's name, or null for the API's own. */
  cluster: string | null
}

/** What a create is reckoned to take on its node while under way, when it names no memory. */
const PLACEMENT_ESTIMATE_MB = 512

/**
 * A create: a `creating` row counted against the team's limit in the same
 * transaction that inserts it, then the first node with room creates the
 * sandbox and the row becomes `running` with its lease; any failure deletes
 * the row (the node rolls its own work back).
 */
export async function createSandbox(
  core: LifecycleCore,
  team: Team,
  req: CreateSandboxRequest,
): Promise<Sandbox> {
  const { isolation } = req
  // Here, not at the route: a fork's creates obey the policy too.
  if (team.requiredIsolation && isolation !== team.requiredIsolation)
    throw new WarrenError(
      'forbidden',
      `team '${team.name}' requires ${team.requiredIsolation} isolation for new sandboxes; this one would run under ${isolation}`,
    )
  const candidates = core.placement.candidates(req.resources?.memoryMb ?? 0, req.nodeId, {
    templateId: req.templateId,
    isolation,
    cluster: req.cluster,
  })
  if (
    !candidates.length &&
    isolation !== 'runc' &&
    core.placement.candidates(req.resources?.memoryMb ?? 0, req.nodeId, { cluster: req.cluster })
      .length
  )
    throw isolationUnavailable(core.placement.list(), isolation)
  if (!candidates.length)
    throw req.nodeId
      ? new WarrenError(
          'unavailable',
          `node ${req.nodeId}, which holds the volumes, is unavailable${req.cluster ? ` in cluster '${req.cluster}'` : ''}`,
        )
      : new WarrenError(
          'capacity_exhausted',
          req.cluster
            ? `no orchestrator node of cluster '${req.cluster}' is available`
            : 'no orchestrator node is available',
        )
  // The chosen node is reckoned fuller from now until the create ends (its
  // answer counts the sandbox then): creates choosing meanwhile see it and
  // spread, instead of all taking the node that looked emptiest.
  const first = candidates[0]!
  const reserveMb = req.resources?.memoryMb || PLACEMENT_ESTIMATE_MB
  first.creatingMb += reserveMb
  try {
    return await core.metrics.timed('create', () => createOnCandidates(core, team, req, candidates))
  } finally {
    first.creatingMb -= reserveMb
  }
}

async function createOnCandidates(
  core: LifecycleCore,
  team: Team,
  req: CreateSandboxRequest,
  candidates: NodeState[],
): Promise<Sandbox> {
  const now = core.clock.now()
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
    // Until the node says: what the create is reckoned to take, which a team
    // memory limit counts (concurrent creates count each other).
    memoryMb: team.maxMemoryMb === null ? 0 : await reckonedMemoryMb(core, req),
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
    volumeMounts: req.volumeMounts,
    cluster: req.cluster,
    isolation: req.isolation,
    // This replica finishes the create; if it dies first, another one kills
    // what it may have left on the node (takeover.ts).
    owner: core.replica.id,
  }
  await insertCreating(core.db, sandbox, team)
  let lastError: unknown
  for (const node of candidates) {
    try {
      const created = await createOn(core, node, sandbox, team, req)
      core.scheduler.schedule(created.sandboxId, created.endAt)
      core.catalog.update(created)
      core.metrics.created.inc()
      return created
    } catch (err) {
      lastError = err
      // Another node may have room; any other failure is final.
      if (!(err instanceof WarrenError && err.code === 'capacity_exhausted')) break
    }
  }
  await deleteSandbox(core.db, sandbox.sandboxId, core.replica.id)
  throw lastError
}

/** The memory a create asks for: its own, else its template build's, else the usual estimate. */
async function reckonedMemoryMb(core: LifecycleCore, req: CreateSandboxRequest): Promise<number> {
  if (req.resources?.memoryMb) return req.resources.memoryMb
  const build = await core.db
    .selectFrom('template_builds')
    .select('memory_mb')
    .where(
      'id',
      '=',
      req.buildId ??
        core.db.selectFrom('templates').select('build_id').where('id', '=', req.templateId),
    )
    .executeTakeFirst()
  return build?.memory_mb || PLACEMENT_ESTIMATE_MB
}

async function createOn(
  core: LifecycleCore,
  node: NodeState,
  s: Sandbox,
  team: Team,
  req: CreateSandboxRequest,
): Promise<Sandbox> {
  const { db, placement } = core
  const owner = core.replica.id
  if (node.nodeId !== s.nodeId)
    await transition(db, s.sandboxId, { from: ['creating'], owner }, { nodeId: node.nodeId })
  const res = await node.client.create({
    sandboxId: s.sandboxId,
    templateId: s.templateId,
    ...(req.buildId ? { buildId: req.buildId } : {}),
    // A node that lacks the template fetches it from one that has it.
    ...withTemplateSource(placement, s.templateId, node),
    envVars: s.envVars,
    ...(s.envdAccessToken ? { envdAccessToken: s.envdAccessToken } : {}),
    // The node proxy asks direct callers for it (edges check it themselves).
    ...(s.trafficAccessToken ? { trafficAccessToken: s.trafficAccessToken } : {}),
    network: networkConfigToMessage(s.network),
    ...req.resources,
    ...(s.allowInternetAccess !== null ? { allowInternetAccess: s.allowInternetAccess } : {}),
    volumeMounts: s.volumeMounts,
    ...(req.isolation && req.isolation !== 'runc' ? { isolation: req.isolation } : {}),
  })
  const info = res.sandbox!
  // Counted at once, so the next placement sees it; the node's own figures follow.
  node.memoryMbFree -= info.memoryMb
  node.cpuAllocated += info.cpuCount
  void placement.refresh(node)
  const startedAt = core.clock.now()
  const running = await transition(
    db,
    s.sandboxId,
    { from: ['creating'], owner },
    {
      state: 'running',
      owner: null,
      nodeId: node.nodeId,
      startedAt,
      endAt: endAfter(startedAt, s.timeoutS, { startedAt, maxLifetimeS: team.maxLifetimeS }),
      envdVersion: info.envdVersion,
      cpuCount: info.cpuCount,
      memoryMb: info.memoryMb,
      diskSizeMb: info.diskSizeMb,
      address: info.address,
      // A gVisor sandbox restored from its snapshot's memory image says so, as a resume does.
      resumedFrom: KIND[res.resumedFrom] ?? null,
    },
  )
  if (!running) {
    await node.client.kill({ sandboxId: s.sandboxId }).catch(() => {})
    throw new WarrenError('internal', `sandbox ${s.sandboxId} vanished while it was created`)
  }
  return running
}

function withTemplateSource(placement: Placement, templateId: string, node: NodeState) {
  const url = templateSource(placement, templateId, node)
  return url ? { templateSourceUrl: url } : {}
}
