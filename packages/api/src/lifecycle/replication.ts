import { CatalogFeed } from '../catalog/feed.js'
import type { LifecycleCore } from './core.js'
import type { ExpiryPoller } from './expiry-poller.js'
import type { Replica } from './replica.js'
import { startTakeover } from './takeover.js'

/** Tuning of the replica set; the defaults suit a deployment, tests shorten them. */
export interface ReplicationOptions {
  /** Between two heartbeats of a replica. */
  heartbeatMs: number
  /** A replica silent for this long is dead and its transitional rows are taken over. */
  staleMs: number
  /** Between two takeover passes. */
  takeoverIntervalMs: number
  /** Between two polls for due expiries. */
  pollMs: number
}

export const DEFAULT_REPLICATION: ReplicationOptions = {
  heartbeatMs: 500,
  staleMs: 5000,
  takeoverIntervalMs: 1000,
  pollMs: 200,
}

/**
 * The background work of one replica on PostgreSQL, started and stopped in
 * order: membership (heartbeats), the catalog's change feed, a first
 * takeover pass (a crashed predecessor's rows), the expiry poller and the
 * takeover loop. Each loop is bounded and says which replica owns what (see
 * replica.ts, expiry-poller.ts, takeover.ts, catalog/feed.ts).
 */
export class Replication {
  readonly feed: CatalogFeed
  private takeover: ReturnType<typeof startTakeover> | undefined

  constructor(
    private readonly core: LifecycleCore,
    private readonly replica: Replica,
    private readonly poller: ExpiryPoller,
    private readonly o: ReplicationOptions,
  ) {
    this.feed = new CatalogFeed(core.db, core.catalog, core.log)
  }

  async start(): Promise<void> {
    await this.replica.start()
    await this.feed.start()
    this.takeover = startTakeover(this.core, {
      staleMs: this.o.staleMs,
      intervalMs: this.o.takeoverIntervalMs,
    })
    await this.takeover.runOnce()
    this.poller.start()
  }

  /** One takeover pass now (tests). */
  takeOver(): Promise<number> {
    return this.takeover?.runOnce() ?? Promise.resolve(0)
  }

  /**
   * Every loop stops at once, nothing is waited for and the registration
   * stays, to go stale: what a crash leaves (tests). Operations already
   * under way still finish their writes, as a dead process's last
   * statements may still commit: they must lose to the takeover.
   */
  async halt(): Promise<void> {
    this.replica.halt()
    this.poller.halt()
    await this.takeover?.stop()
    await this.feed.stop()
  }

  async stop(): Promise<void> {
    await this.poller.stop()
    await this.takeover?.stop()
    await this.replica.stop()
    await this.feed.stop()
  }
}
