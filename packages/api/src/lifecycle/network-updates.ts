import { KeyedLock, type NetworkConfig, networkConfigToMessage } from '@warren/shared'
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
  private readonly queues = new KeyedLock()

  constructor(private readonly core: LifecycleCore) {}

  /** `current` reads the sandbox (running, the caller's team) once it is this update's turn. */
  update(
    sandboxId: string,
    current: () => Promise<Sandbox>,
    network: NetworkConfig,
    allowInternetAccess: boolean | null,
  ): Promise<Sandbox> {
    return this.queues.run(sandboxId, () => this.apply(current, network, allowInternetAccess))
  }

  /**
   * Pushes the store's config to the node again (its enforcement drifted,
   * e.g. a crash between the two halves of an update), in the sandbox's
   * queue, so it never interleaves with an update.
   */
  resync(sandboxId: string, current: () => Promise<Sandbox>): Promise<void> {
    return this.queues.run(sandboxId, async () => {
      const s = await current()
      await this.core.placement.node(s.nodeId).client.updateNetwork({
        sandboxId,
        network: networkConfigToMessage(s.network),
        ...(s.allowInternetAccess !== null ? { allowInternetAccess: s.allowInternetAccess } : {}),
      })
      this.core.log.warn({ sandboxId }, "network rules repaired to the store's")
    })
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
