import { type NetworkConfig, networkConfigToMessage } from '@warren/shared'
import type { Sandbox } from '../store/sandboxes.js'
import { transition } from '../store/sandboxes.js'
import { type LifecycleCore, lostRace } from './core.js'

/**
 * Replaces network configs of running sandboxes: the node applies the new
 * rules first (atomically, or not at all), then the record follows, so the
 * two never disagree; if the record cannot follow, the node is put back.
 * Updates of one sandbox run one at a time.
 */
export class NetworkUpdates {
  private readonly queues = new Map<string, Promise<unknown>>()

  constructor(private readonly core: LifecycleCore) {}

  /** `current` reads the sandbox (running, the caller's team) once it is this update's turn. */
  update(
    sandboxId: string,
    current: () => Promise<Sandbox>,
    network: NetworkConfig,
    allowInternetAccess: boolean | null,
  ): Promise<Sandbox> {
    const run = (this.queues.get(sandboxId) ?? Promise.resolve())
      .catch(() => {})
      .then(() => this.apply(current, network, allowInternetAccess))
    const tail = run.catch(() => {})
    this.queues.set(sandboxId, tail)
    void tail.then(() => {
      if (this.queues.get(sandboxId) === tail) this.queues.delete(sandboxId)
    })
    return run
  }

  private async apply(
    current: () => Promise<Sandbox>,
    network: NetworkConfig,
    allowInternetAccess: boolean | null,
  ): Promise<Sandbox> {
    const { db, catalog, log } = this.core
    const s = await current()
    const client = this.core.placement.node(s.nodeId).client
    const push = (net: NetworkConfig, iae: boolean | null) =>
      client.updateNetwork({
        sandboxId: s.sandboxId,
        network: networkConfigToMessage(net),
        ...(iae !== null ? { allowInternetAccess: iae } : {}),
      })
    await push(network, allowInternetAccess)
    try {
      const updated = await transition(
        db,
        s.sandboxId,
        { from: ['running', 'pausing', 'paused', 'resuming'] },
        { network, allowInternetAccess },
      )
      if (!updated) throw await lostRace(db, s.sandboxId)
      catalog.update(updated)
      return updated
    } catch (err) {
      await push(s.network, s.allowInternetAccess).catch((e) =>
        log.error({ err: e, sandboxId: s.sandboxId }, 'network rollback on the node failed'),
      )
      throw err
    }
  }
}
