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
  /** Base URL of the node's RPC port, which also serves its volumes' files; unset if not known. */
  url: string | undefined
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
 * read at registration, after every placement and on every `refresh`; a node
 * that fails to answer is skipped until it answers again. A configured node
 * that is down when the API starts is registered unhealthy, not fatal.
 */
export class Placement {
  private readonly nodes = new Map<string, NodeState>()
  private readonly listeners = new Set<(node: NodeState) => void>()

  constructor(private readonly log: Logger) {}

  /**
   * Registers a node; `nodeId` (configured) lets an unreachable node be
   * registered too; `url` is where its RPC port answers over HTTP.
   */
  async register(transport: Transport, nodeId?: string, url?: string): Promise<NodeState> {
    const client = createWarrenClient(OrchestratorService, transport)
    const node: NodeState = {
      nodeId: nodeId ?? '',
      client,
      proxyUrl: '',
      memoryMbFree: 0,
      healthy: false,
      url,
    }
    try {
      const info = await client.nodeInfo({})
      if (nodeId && info.nodeId !== nodeId) {
        throw new WarrenError('invalid_argument', `node at ${nodeId} says it is '${info.nodeId}'`)
      }
      Object.assign(node, {
        nodeId: info.nodeId,
        proxyUrl: info.proxyUrl,
        memoryMbFree: Number(info.memoryMbTotal - info.memoryMbAllocated),
        healthy: true,
      })
    } catch (err) {
      if (!nodeId || (err instanceof WarrenError && err.code === 'invalid_argument')) throw err
      this.log.warn({ err, nodeId }, 'node did not answer; registered as unhealthy')
    }
    this.nodes.set(node.nodeId, node)
    return node
  }

  /** Called when a node's proxy URL becomes known or changes. */
  onNodeChange(fn: (node: NodeState) => void): void {
    this.listeners.add(fn)
  }

  node(nodeId: string): NodeState {
    const node = this.nodes.get(nodeId)
    if (!node) throw new WarrenError('unavailable', `node ${nodeId} is not registered`)
    return node
  }

  list(): NodeState[] {
    return [...this.nodes.values()]
  }

  /**
   * Healthy nodes with room for `memoryMb`, most free memory first; only
   * `nodeId` when given (a sandbox mounting volumes goes where they are).
   */
  candidates(memoryMb: number, nodeId?: string): NodeState[] {
    return this.list()
      .filter((n) => n.healthy && n.memoryMbFree >= memoryMb)
      .filter((n) => nodeId === undefined || n.nodeId === nodeId)
      .sort((a, b) => b.memoryMbFree - a.memoryMbFree)
  }

  async refresh(node: NodeState): Promise<void> {
    try {
      const info = await node.client.nodeInfo({})
      node.memoryMbFree = Number(info.memoryMbTotal - info.memoryMbAllocated)
      const moved = node.proxyUrl !== info.proxyUrl
      node.proxyUrl = info.proxyUrl
      node.healthy = true
      if (moved) for (const fn of this.listeners) fn(node)
    } catch (err) {
      node.healthy = false
      this.log.warn({ err, nodeId: node.nodeId }, 'node did not answer')
    }
  }
}
