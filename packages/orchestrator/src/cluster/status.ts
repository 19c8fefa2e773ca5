import { randomUUID } from 'node:crypto'
import type { MessageInitShape } from '@bufbuild/protobuf'
import { timestampFromMs } from '@bufbuild/protobuf/wkt'
import { WARREN_VERSION } from '@warren/shared'
import type { NodeStatusSchema } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { SandboxNode } from '../node.js'

export type NodeStatusInit = MessageInitShape<typeof NodeStatusSchema>

/** Where the node's ports are reached from the control plane and edge proxies. */
export interface NodeAddresses {
  rpcUrl: string
  proxyUrl: string
}

/**
 * The node's account of itself, for heartbeats and NodeInfo: identity
 * (a fresh instance id per process), where it is reached, capacity, the
 * isolations and templates it can boot and the sandboxes whose container exited.
 */
export function nodeStatusSource(node: SandboxNode, urls: NodeAddresses): () => NodeStatusInit {
  const instanceId = randomUUID()
  return () => {
    const info = node.info()
    return {
      nodeId: info.nodeId,
      cluster: node.cfg.clusterName,
      version: WARREN_VERSION,
      instanceId,
      rpcUrl: urls.rpcUrl,
      proxyUrl: urls.proxyUrl,
      cpuCount: info.cpuCount,
      cpuAllocated: info.cpuAllocated,
      memoryMbTotal: BigInt(info.memoryMbTotal),
      memoryMbAllocated: BigInt(info.memoryMbAllocated),
      sandboxes: info.sandboxes,
      addressesFree: info.addressesFree,
      templates: [...new Set(node.templates().map((t) => t.templateId))],
      isolations: [...info.isolations],
      exited: node.exits.list().map((e) => ({
        sandboxId: e.sandboxId,
        exitedAt: timestampFromMs(Date.parse(e.at)),
        detail: e.detail,
        oom: e.oom ?? false,
      })),
      snapshotStore: node.snapshots.shared !== undefined,
    }
  }
}
