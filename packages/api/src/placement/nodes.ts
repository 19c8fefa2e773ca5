import {
  type Client,
  Code,
  ConnectError,
  createRouterTransport,
  type Transport,
} from '@connectrpc/connect'
import { createWarrenClient, type Isolation, type Logger, WarrenError } from '@warren/shared'
import {
  type NodeStatus,
  OrchestratorService,
} from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'

export type OrchestratorClient = Client<typeof OrchestratorService>

/** Whether a node takes new sandboxes: operators cordon and drain nodes (`warren node`). */
export type Schedulable = 'active' | 'cordoned' | 'draining'

/**
 * How the API knows a node: in its own process (the all-in-one), listed in
 * WARREN_NODES (both polled with NodeInfo), or registered by its heartbeats.
 */
export type NodeSource = 'local' | 'static' | 'registered'

export interface NodeState {
  nodeId: string
  source: NodeSource
  /**
   * The remote cluster the node belongs to (the secret it heartbeats with),
   * or null for the API's own cluster (polled nodes, dialled with its secret).
   */
  cluster: string | null
  client: OrchestratorClient
  proxyUrl: string
  /** Base URL of the node's RPC port, which also serves its volumes' files; unset if not known. */
  url: string | undefined
  /** The isolations it runs new sandboxes with, as it last said; undefined until it has answered. */
  isolations: readonly string[] | undefined
  /** The secret a registered node heartbeats with, which its client presents (unset: the API's own). */
  secret: string | undefined
  memoryMbFree: number
  memoryMbTotal: number
  cpuCount: number
  cpuAllocated: number
  /**
   * Memory (MB) of this replica's creates under way there: placed but not
   * yet counted in the node's figures. Concurrent creates see each other
   * through it, so a burst spreads instead of all taking the emptiest node.
   */
  creatingMb: number
  /** Template ids the node can boot; undefined until it said. */
  templates: Set<string> | undefined
  version: string
  instanceId: string
  /** When the node last answered or heartbeated (ms since the epoch); 0: never. */
  lastSeenMs: number
  /** Answering recently enough to get placements. */
  healthy: boolean
  /** Silent past the grace period: its sandboxes were reported lost. */
  lost: boolean
  schedulable: Schedulable
  /**
   * It publishes its paused sandboxes' snapshots to a shared snapshot store:
   * they outlive the node (and resume elsewhere) when it is lost.
   */
  snapshotStore: boolean
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

/**
 * Reaches a node's RPC at `url` with a cluster secret: the API's own by
 * default, else the one the node registered with (its cluster's).
 */
export type NodeDialer = (url: string, secret?: string) => Transport

/** Who sends a heartbeat: the cluster its secret belongs to (null: the API's own), and that secret. */
export interface NodeCaller {
  cluster: string | null
  secret: string
}

/** A sandbox the node found dead (its container's first process exited, or OOM). */
export interface ExitReport {
  nodeId: string
  sandboxId: string
  detail: string
  oom: boolean
}

/**
 * The orchestrator nodes sandboxes are placed on. A node is known from its
 * status (NodeInfo for polled nodes, heartbeats for registered ones); each
 * status refreshes its capacity and templates and marks it seen. The health
 * loop (health.ts) ages nodes: unhealthy ones get no placements, lost ones
 * have their sandboxes reported lost. The registry is this API process's:
 * nodes heartbeat to one API at a time, and cordons are kept in memory.
 */
export class Placement {
  private readonly nodes = new Map<string, NodeState>()
  private readonly listeners = new Set<(node: NodeState) => void>()
  private readonly exitListeners = new Set<(report: ExitReport) => void>()

  constructor(
    private readonly log: Logger,
    private readonly dial?: NodeDialer,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Registers a polled node; `nodeId` (configured) lets an unreachable node
   * be registered too; `url` is where its RPC port answers over HTTP.
   */
  async register(
    transport: Transport,
    nodeId?: string,
    url?: string,
    source: NodeSource = nodeId ? 'static' : 'local',
  ): Promise<NodeState> {
    const node = blankNode(
      nodeId ?? '',
      source,
      null,
      createWarrenClient(OrchestratorService, transport),
    )
    node.url = url
    try {
      const status = (await node.client.nodeInfo({})).status
      if (!status) throw new WarrenError('internal', 'the node sent no status')
      if (nodeId && status.nodeId !== nodeId) {
        throw new WarrenError('invalid_argument', `node at ${nodeId} says it is '${status.nodeId}'`)
      }
      node.nodeId = status.nodeId
      this.apply(node, status)
    } catch (err) {
      if (!nodeId || (err instanceof WarrenError && err.code === 'invalid_argument')) throw err
      // Its grace period runs from now.
      node.lastSeenMs = this.now()
      this.log.warn({ err, nodeId }, 'node did not answer; registered as unhealthy')
    }
    this.nodes.set(node.nodeId, node)
    return node
  }

  /**
   * A registered node's heartbeat: the node is added (or its RPC client
   * replaced when it moved, or came back with another secret) and marked
   * seen. The API calls it with the secret it heartbeats with: the one its
   * cluster's nodes accept. A polled node of the same id is refused (one
   * node, one way of knowing it), and so is a node id another cluster holds.
   */
  heartbeat(status: NodeStatus, caller: NodeCaller): NodeState {
    if (
      !status.nodeId ||
      !/^https?:\/\//.test(status.rpcUrl) ||
      !/^https?:\/\//.test(status.proxyUrl)
    )
      throw new WarrenError(
        'invalid_argument',
        'a heartbeat needs a node id, an rpc url and a proxy url',
      )
    let node = this.nodes.get(status.nodeId)
    if (node && node.source !== 'registered')
      throw new WarrenError(
        'conflict',
        `node ${status.nodeId} is polled here (WARREN_NODES or in-process); it cannot also register`,
      )
    if (node && node.cluster !== caller.cluster)
      throw new WarrenError(
        'conflict',
        `node id ${status.nodeId} belongs to ${clusterName(node.cluster)}, not ${clusterName(caller.cluster)}`,
      )
    if (!this.dial) throw new WarrenError('unavailable', 'this API takes no node registrations')
    if (!node || node.url !== status.rpcUrl || !node.url || node.secret !== caller.secret) {
      const client = createWarrenClient(
        OrchestratorService,
        this.dial(status.rpcUrl, caller.secret),
      )
      if (node) node.client = client
      else node = blankNode(status.nodeId, 'registered', caller.cluster, client)
      node.url = status.rpcUrl
      node.secret = caller.secret
      this.nodes.set(node.nodeId, node)
      this.log.info(
        { nodeId: node.nodeId, rpc: status.rpcUrl, version: status.version },
        'node registered',
      )
    }
    this.apply(node, status)
    return node
  }

  /**
   * A node the store has sandboxes on but that has not registered since this
   * API started: known by id, unhealthy, its grace period running from now
   * (a node that died while the API was down is lost like any other). Every
   * call to it is `unavailable` until its first heartbeat.
   */
  awaitRegistration(nodeId: string, cluster: string | null): NodeState {
    const known = this.nodes.get(nodeId)
    if (known) return known
    const silent = createRouterTransport(() => {}, {
      transport: {
        interceptors: [
          () => () => {
            throw new ConnectError(`node ${nodeId} has not registered yet`, Code.Unavailable)
          },
        ],
      },
    })
    const node = blankNode(
      nodeId,
      'registered',
      cluster,
      createWarrenClient(OrchestratorService, silent),
    )
    node.lastSeenMs = this.now()
    this.nodes.set(nodeId, node)
    return node
  }

  /** Takes a node's status: capacity, templates, addresses, exits; the node is seen. */
  private apply(node: NodeState, s: NodeStatus): void {
    if (node.lost || !node.healthy)
      this.log.info({ nodeId: node.nodeId }, node.lost ? 'lost node is back' : 'node is healthy')
    if (s.instanceId !== node.instanceId && node.instanceId)
      this.log.info({ nodeId: node.nodeId, version: s.version }, 'node restarted')
    const moved = node.proxyUrl !== s.proxyUrl
    Object.assign(node, {
      proxyUrl: s.proxyUrl,
      memoryMbTotal: Number(s.memoryMbTotal),
      memoryMbFree: Number(s.memoryMbTotal - s.memoryMbAllocated),
      cpuCount: s.cpuCount,
      cpuAllocated: s.cpuAllocated,
      templates: new Set(s.templates),
      isolations: offered(s.isolations),
      version: s.version,
      instanceId: s.instanceId,
      lastSeenMs: this.now(),
      healthy: true,
      lost: false,
      snapshotStore: s.snapshotStore,
    })
    if (s.rpcUrl && node.source !== 'registered') node.url ??= s.rpcUrl
    if (moved) for (const fn of this.listeners) fn(node)
    for (const e of s.exited)
      for (const fn of this.exitListeners)
        fn({ nodeId: node.nodeId, sandboxId: e.sandboxId, detail: e.detail, oom: e.oom })
  }

  /** Called when a node's proxy URL becomes known or changes. */
  onNodeChange(fn: (node: NodeState) => void): void {
    this.listeners.add(fn)
  }

  /** Called for every sandbox a node reports exited (at every status until it is killed). */
  onExit(fn: (report: ExitReport) => void): void {
    this.exitListeners.add(fn)
  }

  node(nodeId: string): NodeState {
    const node = this.nodes.get(nodeId)
    if (!node) throw new WarrenError('unavailable', `node ${nodeId} is not registered`)
    return node
  }

  find(nodeId: string): NodeState | undefined {
    return this.nodes.get(nodeId)
  }

  list(): NodeState[] {
    return [...this.nodes.values()]
  }

  /** Sets whether a node takes new sandboxes; the previous setting is returned. */
  setSchedulable(nodeId: string, to: Schedulable): Schedulable {
    const node = this.nodes.get(nodeId)
    if (!node) throw new WarrenError('not_found', `node ${nodeId} not found`)
    const was = node.schedulable
    node.schedulable = to
    if (was !== to) this.log.info({ nodeId, from: was, to }, 'node schedulability changed')
    return was
  }

  /**
   * Nodes a new sandbox may go to: healthy, active, with room for `memoryMb`,
   * holding the template when some node does (else every fitting node, whose
   * answer says the template is missing); the emptiest first, by free memory,
   * then by free CPUs (CPUs are shares, promised beyond the count: they
   * order nodes and refuse none). Only `nodeId` when given (a sandbox
   * mounting volumes goes where they are), only nodes of `want.cluster`
   * (a remote cluster's name, or null for the API's own), and only nodes
   * offering the isolation asked (default runc).
   */
  candidates(
    memoryMb: number,
    nodeId: string | undefined,
    want: { templateId?: string; cluster: string | null; isolation?: Isolation },
  ): NodeState[] {
    const isolation = want.isolation ?? 'runc'
    const fitting = this.list()
      .filter((n) => n.cluster === want.cluster)
      .filter((n) => n.healthy && !n.lost && n.schedulable === 'active')
      .filter((n) => n.memoryMbFree >= memoryMb)
      .filter((n) => nodeId === undefined || n.nodeId === nodeId)
      .filter((n) => n.isolations?.includes(isolation))
    const tpl = want.templateId
    const holding = tpl ? fitting.filter((n) => n.templates?.has(tpl)) : fitting
    return (holding.length ? holding : fitting).sort(
      (a, b) =>
        b.memoryMbFree - b.creatingMb - (a.memoryMbFree - a.creatingMb) ||
        b.cpuCount - b.cpuAllocated - (a.cpuCount - a.cpuAllocated),
    )
  }

  /** Asks a node for its status now (after a placement; polled nodes every interval). */
  async refresh(node: NodeState): Promise<void> {
    try {
      const status = (await node.client.nodeInfo({})).status
      if (!status) throw new WarrenError('internal', 'the node sent no status')
      this.apply(node, status)
    } catch (err) {
      // A registered node's health is its heartbeats'; a polled one is down now.
      if (node.source === 'registered') return
      if (node.healthy) this.log.warn({ err, nodeId: node.nodeId }, 'node did not answer')
      node.healthy = false
    }
  }
}

/** A node that names no isolation predates them: it runs runc. */
function offered(isolations: string[]): string[] {
  return isolations.length ? isolations : ['runc']
}

/**
 * Why no node can take a sandbox of this isolation now: 400 when every
 * registered node has said what it offers and none offers it (asking again
 * will not help until the operator installs runsc), 503 when one that
 * offers it is down or full, or a node has not answered yet.
 */
export function isolationUnavailable(nodes: NodeState[], isolation: Isolation): WarrenError {
  const anyOffers = nodes.some((n) => n.isolations?.includes(isolation))
  const unknown = nodes.some((n) => n.isolations === undefined)
  if (!anyOffers && !unknown)
    return new WarrenError(
      'invalid_argument',
      `no node of this deployment offers ${isolation} isolation${isolation === 'gvisor' ? ' (runsc is not installed or does not work there)' : ''}`,
    )
  return new WarrenError(
    'unavailable',
    `no node offering ${isolation} isolation is available now; retry later`,
  )
}

/** How a cluster is named in messages. */
export function clusterName(cluster: string | null): string {
  return cluster === null ? "the API's own cluster" : `cluster '${cluster}'`
}

function blankNode(
  nodeId: string,
  source: NodeSource,
  cluster: string | null,
  client: OrchestratorClient,
): NodeState {
  return {
    nodeId,
    source,
    cluster,
    client,
    secret: undefined,
    proxyUrl: '',
    url: undefined,
    memoryMbFree: 0,
    memoryMbTotal: 0,
    cpuCount: 0,
    cpuAllocated: 0,
    creatingMb: 0,
    templates: undefined,
    isolations: undefined,
    version: '',
    instanceId: '',
    lastSeenMs: 0,
    healthy: false,
    lost: false,
    schedulable: 'active',
    snapshotStore: false,
  }
}
