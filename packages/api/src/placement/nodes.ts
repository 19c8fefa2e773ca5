import type { Client, Transport } from '@connectrpc/connect'
import { createConnectTransport } from '@connectrpc/connect-node'
import { createWarrenClient, type Logger, WarrenError } from '@warren/shared'
import { OrchestratorService } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'

export type OrchestratorClient = Client<typeof OrchestratorService>

export interface NodeState {
  nodeId: string
  client: OrchestratorClient
  proxyUrl: string
  memoryMbFree: number
  healthy: boolean
}

/** Parses `id=url,id=url` (WARREN_NODES). */
export function parseNodeList(value: string): Array<{ nodeId: string; url: string }> {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [nodeId, url] = entry.split('=')
      if (!nodeId || !url || !/^https?:\/\//.test(url)) {
        throw new WarrenError(
          'invalid_argument',
          `invalid node '${entry}' (expected id=http://host:port)`,
        )
      }
      return { nodeId, url }
    })
}

export function networkTransport(url: string): Transport {
  return createConnectTransport({ baseUrl: url, httpVersion: '1.1' })
}

/**
 * The orchestrator nodes sandboxes are placed on. Each node's capacity is
 * read at registration and after every placement; a node that fails to
 * answer is skipped until it answers again.
 */
export class Placement {
  private readonly nodes = new Map<string, NodeState>()

  constructor(private readonly log: Logger) {}

  async register(transport: Transport): Promise<NodeState> {
    const client = createWarrenClient(OrchestratorService, transport)
    const info = await client.nodeInfo({})
    const node: NodeState = {
      nodeId: info.nodeId,
      client,
      proxyUrl: info.proxyUrl,
      memoryMbFree: Number(info.memoryMbTotal - info.memoryMbAllocated),
      healthy: true,
    }
    this.nodes.set(node.nodeId, node)
    return node
  }

  node(nodeId: string): NodeState {
    const node = this.nodes.get(nodeId)
    if (!node) throw new WarrenError('unavailable', `node ${nodeId} is not registered`)
    return node
  }

  list(): NodeState[] {
    return [...this.nodes.values()]
  }

  /** Healthy nodes with room for `memoryMb`, most free memory first. */
  candidates(memoryMb: number): NodeState[] {
    return this.list()
      .filter((n) => n.healthy && n.memoryMbFree >= memoryMb)
      .sort((a, b) => b.memoryMbFree - a.memoryMbFree)
  }

  async refresh(node: NodeState): Promise<void> {
    try {
      const info = await node.client.nodeInfo({})
      node.memoryMbFree = Number(info.memoryMbTotal - info.memoryMbAllocated)
      node.proxyUrl = info.proxyUrl
      node.healthy = true
    } catch (err) {
      node.healthy = false
      this.log.warn({ err, nodeId: node.nodeId }, 'node did not answer')
    }
  }
}
