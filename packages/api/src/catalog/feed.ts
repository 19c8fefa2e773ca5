import type { Logger } from '@warren/shared'
import type pg from 'pg'
import { type Db, listenerClient } from '../store/db.js'
import { SANDBOX_CHANNEL } from '../store/migrations-replicas.js'
import { sandboxesByIds, sandboxesInStates } from '../store/sandboxes.js'
import type { Catalog } from './catalog.js'

/** Reconnects of the listening connection back off up to this. */
const MAX_BACKOFF_MS = 5000
/** Ids per fetch of notified rows. */
const FETCH_BATCH = 500

/**
 * Keeps this replica's catalog in step with changes committed on any replica
 * (PostgreSQL): a trigger announces each change of a sandbox's route as
 * `id:version` on a channel this feed LISTENs to on a connection of its own.
 * Notified rows are fetched in batches and published if newer than what the
 * catalog holds (the version orders a sandbox's changes; a late or repeated
 * notification is dropped); a deleted row (`:-1`) is removed. Notifications
 * sent while the connection was down are lost, so every (re)connect is
 * followed by a full reload of the routable rows — LISTEN first, then the
 * reload, so nothing falls between the two.
 */
export class CatalogFeed {
  private client: pg.Client | undefined
  private stopped = false
  private backoff = 100
  private readonly pending = new Set<string>()
  private flushing: Promise<void> | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  /** Full reloads so far: the first, then one after each reconnect. */
  reloads = 0

  constructor(
    private readonly db: Db,
    private readonly catalog: Catalog,
    private readonly log: Logger,
  ) {}

  /** Listens and loads the catalog; throws if the first connection fails. */
  async start(): Promise<void> {
    await this.connect()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.reconnectTimer)
    await this.flushing
    await this.client?.end().catch(() => {})
  }

  /** Ends the listening connection as a network failure would (tests). */
  breakConnection(): void {
    const c = this.client as unknown as { connection?: { stream?: { destroy(): void } } }
    c.connection?.stream?.destroy()
  }

  private async connect(): Promise<void> {
    const client = listenerClient(this.db)
    client.on('notification', (n) => this.onNotification(n.payload ?? ''))
    client.on('error', (err) => this.lost(client, err))
    client.on('end', () => this.lost(client))
    await client.connect()
    await client.query(`LISTEN ${SANDBOX_CHANNEL}`)
    this.client = client
    const rows = await sandboxesInStates(this.db, [
      'running',
      'pausing',
      'paused',
      'resuming',
      'killing',
      'killed',
    ])
    this.catalog.reload(rows)
    this.reloads++
    this.backoff = 100
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client || this.stopped) return
    this.client = undefined
    this.log.warn({ err }, 'catalog feed: listening connection lost; reconnecting')
    client.end().catch(() => {})
    this.scheduleReconnect()
  }

  private scheduleReconnect(): void {
    if (this.stopped) return
    this.reconnectTimer = setTimeout(() => {
      this.connect().catch((err) => {
        this.log.warn({ err }, 'catalog feed: reconnect failed')
        this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS)
        this.scheduleReconnect()
      })
    }, this.backoff)
    this.reconnectTimer.unref()
  }

  private onNotification(payload: string): void {
    const at = payload.lastIndexOf(':')
    const id = payload.slice(0, at)
    const version = Number(payload.slice(at + 1))
    if (!id || !Number.isInteger(version)) return
    // This replica's own changes are in the catalog already.
    const known = this.catalog.version(id)
    if (version >= 0 && known !== undefined && version <= known) return
    this.pending.add(id)
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined
    })
  }

  /** Fetches the notified rows (batched while a fetch is under way) and publishes them. */
  private async flush(): Promise<void> {
    while (this.pending.size && !this.stopped) {
      const ids = [...this.pending].slice(0, FETCH_BATCH)
      for (const id of ids) this.pending.delete(id)
      try {
        const rows = await sandboxesByIds(this.db, ids)
        const found = new Set(rows.map((r) => r.sandboxId))
        for (const r of rows) this.catalog.update(r)
        for (const id of ids) if (!found.has(id)) this.catalog.remove(id)
      } catch (err) {
        // The rows stay unknown until the next notification or reload.
        this.log.warn({ err }, 'catalog feed: fetching changed sandboxes failed')
      }
    }
  }
}
