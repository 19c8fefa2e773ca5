import type { MessageInitShape } from '@bufbuild/protobuf'
import { timestampFromMs } from '@bufbuild/protobuf/wkt'
import type { ServiceImpl } from '@connectrpc/connect'
import { WarrenError } from '@warren/shared'
import type { NodeService, NodeSummarySchema } from '@warren/shared/gen/warren/api/v1/nodes_pb'
import type { LifecycleEngine } from '../lifecycle/engine.js'
import type { NodeState, Placement, Schedulable } from '../placement/nodes.js'
import { callerOf } from './callers.js'

const SCHEDULABLE: readonly Schedulable[] = ['active', 'cordoned', 'draining']

export function nodeSummary(n: NodeState): MessageInitShape<typeof NodeSummarySchema> {
  return {
    nodeId: n.nodeId,
    source: n.source,
    health: n.lost ? 'lost' : n.healthy ? 'healthy' : 'unhealthy',
    schedulable: n.schedulable,
    rpcUrl: n.url ?? '',
    proxyUrl: n.proxyUrl,
    version: n.version,
    cpuCount: n.cpuCount,
    cpuAllocated: n.cpuAllocated,
    memoryMbTotal: BigInt(n.memoryMbTotal),
    memoryMbFree: BigInt(Math.max(0, n.memoryMbFree)),
    templates: [...(n.templates ?? [])].sort(),
    ...(n.lastSeenMs ? { lastSeen: timestampFromMs(n.lastSeenMs) } : {}),
  }
}

/**
 * The API's internal RPC for nodes (heartbeats) and their operators
 * (`warren node`). Behind a cluster secret like the rest of the port:
 * whoever holds one is part of that cluster, and sees and changes only its
 * nodes. `ownName` is the API's own cluster's name (WARREN_CLUSTER_NAME).
 */
export function nodeService(
  placement: Placement,
  engine: LifecycleEngine,
  opts: { ownName: string },
): ServiceImpl<typeof NodeService> {
  /** The caller's node of that id; another cluster's does not exist for it. */
  const nodeOf = (nodeId: string, cluster: string | null) => {
    const node = placement.find(nodeId)
    if (!node || node.cluster !== cluster)
      throw new WarrenError('not_found', `node ${nodeId} not found`)
    return node
  }
  return {
    async heartbeat(req, ctx) {
      const status = req.status
      if (!status) throw new WarrenError('invalid_argument', 'a heartbeat carries the node status')
      const caller = callerOf(ctx)
      const expected = caller.cluster ?? opts.ownName
      if (status.cluster !== expected)
        throw new WarrenError(
          'forbidden',
          `node ${status.nodeId} says it belongs to cluster '${status.cluster}', but its secret is cluster '${expected}''s`,
        )
      const node = placement.heartbeat(status, caller)
      return { schedulable: node.schedulable }
    },
    async listNodes(_req, ctx) {
      const { cluster } = callerOf(ctx)
      return {
        nodes: placement
          .list()
          .filter((n) => n.cluster === cluster)
          .sort((a, b) => a.nodeId.localeCompare(b.nodeId))
          .map(nodeSummary),
      }
    },
    async setSchedulable(req, ctx) {
      const to = req.schedulable as Schedulable
      if (!SCHEDULABLE.includes(to))
        throw new WarrenError(
          'invalid_argument',
          `schedulable must be one of ${SCHEDULABLE.join(', ')}, not '${req.schedulable}'`,
        )
      nodeOf(req.nodeId, callerOf(ctx).cluster)
      placement.setSchedulable(req.nodeId, to)
      const paused = to === 'draining' ? await engine.drainNode(req.nodeId) : 0
      return { node: nodeSummary(placement.node(req.nodeId)), paused }
    },
  }
}
