import type { MessageInitShape } from '@bufbuild/protobuf'
import { timestampFromMs } from '@bufbuild/protobuf/wkt'
import type { ServiceImpl } from '@connectrpc/connect'
import { WarrenError } from '@warren/shared'
import type { NodeService, NodeSummarySchema } from '@warren/shared/gen/warren/api/v1/nodes_pb'
import type { LifecycleEngine } from '../lifecycle/engine.js'
import type { NodeState, Placement, Schedulable } from '../placement/nodes.js'

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
 * (`warren node`). Behind the cluster secret like the rest of the port:
 * whoever holds it is part of the cluster.
 */
export function nodeService(
  placement: Placement,
  engine: LifecycleEngine,
  opts: { cluster: string },
): ServiceImpl<typeof NodeService> {
  return {
    async heartbeat(req) {
      const status = req.status
      if (!status) throw new WarrenError('invalid_argument', 'a heartbeat carries the node status')
      if (status.cluster !== opts.cluster)
        throw new WarrenError(
          'forbidden',
          `node ${status.nodeId} belongs to cluster '${status.cluster}', this API to '${opts.cluster}'`,
        )
      const node = placement.heartbeat(status)
      return { schedulable: node.schedulable }
    },
    async listNodes() {
      return {
        nodes: placement
          .list()
          .sort((a, b) => a.nodeId.localeCompare(b.nodeId))
          .map(nodeSummary),
      }
    },
    async setSchedulable(req) {
      const to = req.schedulable as Schedulable
      if (!SCHEDULABLE.includes(to))
        throw new WarrenError(
          'invalid_argument',
          `schedulable must be one of ${SCHEDULABLE.join(', ')}, not '${req.schedulable}'`,
        )
      placement.setSchedulable(req.nodeId, to)
      const paused = to === 'draining' ? await engine.drainNode(req.nodeId) : 0
      return { node: nodeSummary(placement.node(req.nodeId)), paused }
    },
  }
}
