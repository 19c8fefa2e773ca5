import type { Logger } from '@warren/shared'
import type { NodeState, Placement } from './nodes.js'

export interface NodeHealthOptions {
  placement: Placement
  /** Silent this long: no placements. */
  unhealthyAfterMs: number
  /** Silent this long (the grace period): the node is lost. */
  lostAfterMs: number
  /** How often polled nodes are asked and every node's age is judged. */
  intervalMs: number
  /** A node just became lost, or is still lost: its sandboxes are reported lost. */
  onLost(node: NodeState): Promise<void>
  log: Logger
  now?: () => number
}

/**
 * The nodes' health: polled nodes (in-process, WARREN_NODES) are asked for
 * their status, then every node is judged by when it was last seen. A node
 * silent past `unhealthyAfterMs` gets no placements; past `lostAfterMs` it
 * is lost and `onLost` reports its sandboxes lost (again at every tick
 * while it stays lost, for sandboxes an operation under way held back).
 * One pass at a time, every `intervalMs`, stopped with the API; each
 * polled node is asked once per pass, with the RPC's own timeout.
 */
export function startNodeHealth(opts: NodeHealthOptions): {
  stop(): void
  runOnce(): Promise<void>
} {
  const now = opts.now ?? Date.now
  let running: Promise<void> | undefined
  const runOnce = async () => {
    const nodes = opts.placement.list()
    await Promise.all(
      nodes.filter((n) => n.source !== 'registered').map((n) => opts.placement.refresh(n)),
    )
    for (const node of nodes) {
      const silentMs = now() - node.lastSeenMs
      if (node.healthy && silentMs > opts.unhealthyAfterMs) {
        node.healthy = false
        opts.log.warn({ nodeId: node.nodeId, silentMs }, 'node stopped answering: no placements')
      }
      // A node never seen (configured, down since the API started) has
      // nothing in this API's hands to lose until the grace period passed.
      if (silentMs > opts.lostAfterMs) {
        if (!node.lost)
          opts.log.error(
            { nodeId: node.nodeId, silentMs },
            'node lost: its sandboxes are reported lost (node_lost)',
          )
        node.lost = true
        await opts
          .onLost(node)
          .catch((err: unknown) => opts.log.error({ err, nodeId: node.nodeId }, 'node loss failed'))
      }
    }
  }
  const timer = setInterval(() => {
    if (running) return
    running = runOnce().finally(() => {
      running = undefined
    })
  }, opts.intervalMs)
  timer.unref()
  return { stop: () => clearInterval(timer), runOnce }
}
