import { timestampMs } from '@bufbuild/protobuf/wkt'
import {
  clusterTransport,
  createWarrenClient,
  loadProxyConfig,
  readClusterCa,
  resolveClusterSecret,
} from '@warren/shared'
import { NodeService, type NodeSummary } from '@warren/shared/gen/warren/api/v1/nodes_pb'
import type { Command } from 'commander'
import { print, printOne } from '../lib/output.js'

/**
 * The API's node service, over its internal port (WARREN_API_INTERNAL_URL)
 * with the cluster secret (WARREN_CLUSTER_SECRET[_FILE], or
 * <WARREN_DATA_DIR>/cluster/secret): operators are cluster members.
 */
function nodeClient() {
  const cfg = loadProxyConfig()
  const secret = resolveClusterSecret(cfg)
  return createWarrenClient(
    NodeService,
    clusterTransport(cfg.apiInternalUrl, { secret, ca: readClusterCa(cfg.clusterCa) }),
  )
}

function row(n: NodeSummary) {
  return {
    node: n.nodeId,
    health: n.health,
    schedulable: n.schedulable,
    source: n.source,
    cpus: `${n.cpuAllocated}/${n.cpuCount}`,
    memoryMbFree: `${n.memoryMbFree}/${n.memoryMbTotal}`,
    templates: n.templates.join(' '),
    version: n.version,
    lastSeen: n.lastSeen ? new Date(timestampMs(n.lastSeen)) : '',
    rpc: n.rpcUrl,
  }
}

export function registerNode(program: Command): void {
  const node = program
    .command('node')
    .description("list, cordon and drain orchestrator nodes (through the API's internal port)")

  node
    .command('list')
    .alias('ls')
    .option('--json', 'machine-readable output')
    .description('nodes with their health (healthy, unhealthy, lost) and schedulability')
    .action(async (opts: { json?: boolean }) => {
      const { nodes } = await nodeClient().listNodes({})
      print(nodes.map(row), opts.json)
    })

  const set = (name: string, schedulable: string, description: string) =>
    node
      .command(`${name} <nodeId>`)
      .option('--json', 'machine-readable output')
      .description(description)
      .action(async (nodeId: string, opts: { json?: boolean }) => {
        const res = await nodeClient().setSchedulable({ nodeId, schedulable })
        if (!res.node) return
        printOne(
          { ...row(res.node), ...(schedulable === 'draining' ? { paused: res.paused } : {}) },
          opts.json,
        )
      })
  set('cordon', 'cordoned', 'no new sandboxes on the node; what runs there stays')
  set('uncordon', 'active', 'the node takes new sandboxes again')
  set(
    'drain',
    'draining',
    'cordon the node, then pause its running sandboxes to their files; they resume on other nodes',
  )
}
