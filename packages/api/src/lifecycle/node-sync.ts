import { type Logger, networkConfigFromMessage, sameNetworkConfig } from '@warren/shared'
import type { Sandbox as NodeSandbox } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { Placement } from '../placement/nodes.js'
import type { Db } from '../store/db.js'
import { type Sandbox, sandboxesInStates } from '../store/sandboxes.js'
import type { SandboxState } from '../store/schema.js'

function drifted(s: Sandbox, there: NodeSandbox): boolean {
  return (
    !sameNetworkConfig(networkConfigFromMessage(there.network), s.network) ||
    (there.allowInternetAccess ?? null) !== s.allowInternetAccess
  )
}

const LIVE: SandboxState[] = ['creating', 'running', 'pausing', 'paused', 'resuming', 'killing']

export interface NodeSyncActions {
  /** A sandbox the store has as running or paused that its node no longer has. */
  lost(sandboxId: string, version: number): Promise<void>
  /** A sandbox a node runs that the store does not know (or knows as killed). */
  orphan(nodeId: string, sandboxId: string): Promise<void>
  /** A running sandbox whose node enforces another network config than the store's. */
  networkDrift(sandboxId: string): Promise<void>
}

/**
 * Compares the store with what the nodes report, so the two agree again after
 * either side restarted or lost something: lost sandboxes become tombstones
 * (reason `orphaned`), orphans on nodes are killed, and unhealthy nodes are
 * asked again whether they are back. Sandboxes in transitional
 * states are left to the operation under way. One pass every `intervalMs`,
 * one at a time, stopped with the API.
 */
export function startNodeSync(opts: {
  db: Db
  placement: Placement
  actions: NodeSyncActions
  intervalMs: number
  log: Logger
  /**
   * Wraps each periodic pass: with several replicas only the holder of the
   * store's `node-sync` lease runs it (the others' passes would only repeat
   * its work); the pass at start runs on every replica.
   */
  lease?: (pass: () => Promise<void>) => () => Promise<void>
}): { stop(): void; runOnce(): Promise<void> } {
  let running: Promise<void> | undefined
  const runOnce = async () => {
    for (const node of opts.placement.list()) {
      // Health and capacity first: a node that was down comes back here.
      await opts.placement.refresh(node)
      if (!node.healthy) continue
      // The store first, then the node: a sandbox created in between is on
      // the node and not in this snapshot of the store, and is left alone;
      // the reverse order could take a fresh sandbox for a lost one.
      const stored = await sandboxesInStates(opts.db, LIVE, node.nodeId)
      let onNode: Map<string, NodeSandbox>
      try {
        onNode = new Map((await node.client.list({})).sandboxes.map((s) => [s.sandboxId, s]))
      } catch (err) {
        opts.log.warn({ err, nodeId: node.nodeId }, 'node sync: node did not answer')
        continue
      }
      const known = new Set(stored.map((s) => s.sandboxId))
      for (const s of stored) {
        const there = onNode.get(s.sandboxId)
        if ((s.state === 'running' || s.state === 'paused') && !there) {
          await opts.actions
            .lost(s.sandboxId, s.version)
            .catch((err) => opts.log.error({ err }, 'node sync failed'))
        } else if (s.state === 'running' && there && drifted(s, there)) {
          // A crash between the node's update and the store's: the store wins.
          await opts.actions
            .networkDrift(s.sandboxId)
            .catch((err) => opts.log.error({ err }, 'node sync: network repair failed'))
        }
      }
      for (const id of onNode.keys()) {
        // Not live in the store snapshot: killOrphan checks the store again
        // (a create may have inserted its row since).
        if (!known.has(id))
          await opts.actions
            .orphan(node.nodeId, id)
            .catch((err) => opts.log.error({ err }, 'node sync failed'))
      }
    }
  }
  const periodic = opts.lease ? opts.lease(runOnce) : runOnce
  const timer = setInterval(() => {
    if (running) return
    running = periodic()
      .catch((err) => opts.log.warn({ err }, 'node sync pass failed'))
      .finally(() => {
        running = undefined
      })
  }, opts.intervalMs)
  timer.unref()
  return { stop: () => clearInterval(timer), runOnce }
}
