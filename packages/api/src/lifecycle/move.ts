import { WarrenError } from '@warren/shared'
import type { ResumeResponse } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { NodeState, Placement } from '../placement/nodes.js'
import type { Sandbox } from '../store/sandboxes.js'
import type { LifecycleCore } from './core.js'

/** What a resume tells the node, wherever it runs. */
interface ResumeRequest {
  sandboxId: string
  envVars: Record<string, string>
  envdAccessToken?: string
  memory?: boolean
}

/** Its node answers: not lost, not silent. */
function alive(n: NodeState | undefined): n is NodeState {
  return !!n && n.healthy && !n.lost
}

/**
 * Resumes a paused sandbox on its own node when that node is up, active and
 * has room; otherwise on another node (a move, always cold: `resumedFrom:
 * files`), which fetches the snapshot from the shared snapshot store or from
 * the origin while it lives. Returns the node that resumed it. A sandbox
 * mounting volumes stays with them.
 */
export async function resumeSomewhere(
  core: LifecycleCore,
  s: Sandbox,
  req: ResumeRequest,
): Promise<{ res: ResumeResponse; nodeId: string }> {
  const origin = core.placement.find(s.nodeId)
  // A cordoned node keeps what it has (a frozen sandbox keeps its memory); a draining one does not.
  if (alive(origin) && origin.schedulable !== 'draining') {
    try {
      return { res: await origin.client.resume(req), nodeId: origin.nodeId }
    } catch (err) {
      // A full origin hands the sandbox on; any other failure is the caller's.
      if (!(err instanceof WarrenError && err.code === 'capacity_exhausted')) throw err
      core.log.info({ sandboxId: s.sandboxId, nodeId: s.nodeId }, 'origin is full; moving')
    }
  }
  const rpcUrl = alive(origin) ? (origin.url ?? '') : ''
  const target = moveTarget(core.placement, s, rpcUrl !== '')
  core.log.info(
    { sandboxId: s.sandboxId, from: s.nodeId, to: target.nodeId, via: rpcUrl || 'store' },
    'resuming a sandbox on another node',
  )
  const res = await target.client.resume({
    ...req,
    memory: false,
    moveFrom: {
      nodeId: s.nodeId,
      rpcUrl,
      templateSourceUrl: templateSource(core.placement, s.templateId, target) ?? '',
    },
  })
  // The origin's copy is stale now. An origin that is down has it killed by
  // node sync when it comes back (the store has the sandbox on another node).
  if (alive(origin))
    origin.client
      .kill({ sandboxId: s.sandboxId })
      .catch((err) =>
        core.log.warn({ err, sandboxId: s.sandboxId }, 'could not remove a moved sandbox'),
      )
  return { res, nodeId: target.nodeId }
}

/**
 * The RPC URL of a node of the target's cluster (whose secret it holds) that
 * answers and has the template, for a `target` that lacks it (undefined when
 * it has it, or nobody does).
 */
export function templateSource(
  placement: Placement,
  templateId: string,
  target: NodeState,
): string | undefined {
  if (!target.templates || target.templates.has(templateId)) return undefined
  return placement
    .list()
    .find((n) => n.cluster === target.cluster && alive(n) && n.url && n.templates?.has(templateId))
    ?.url
}

/**
 * The emptiest other node with room; with the origin down, only nodes that
 * share a snapshot store (none other can reach the snapshot).
 */
function moveTarget(placement: Placement, s: Sandbox, originAnswers: boolean): NodeState {
  if (s.volumeMounts.length)
    throw new WarrenError(
      'unavailable',
      `sandbox ${s.sandboxId} mounts volumes of node ${s.nodeId}, which cannot resume it now`,
    )
  const target = placement
    .candidates(s.memoryMb, undefined, {
      templateId: s.templateId,
      cluster: s.cluster,
      isolation: s.isolation,
    })
    .find((n) => n.nodeId !== s.nodeId && (originAnswers || n.snapshotStore))
  if (!target)
    throw new WarrenError(
      'capacity_exhausted',
      originAnswers
        ? `node ${s.nodeId} cannot resume sandbox ${s.sandboxId} and no other node has room`
        : `node ${s.nodeId} is down and no node with a shared snapshot store has room for sandbox ${s.sandboxId}`,
    )
  return target
}
