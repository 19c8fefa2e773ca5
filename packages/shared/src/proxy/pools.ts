import { buildConnector, Pool } from 'undici'
import { httpUrl } from '../listen.js'
import type { ConnectWindowHandle } from './connect-window.js'
import { type DialRetry, retriesDial, type TlsVerify, tlsOptionsFor } from './dial.js'
import { dialUpstream } from './window-dial.js'

const IDLE_MS = 60_000
const MAX_POOLS = 4096

/**
 * Keep-alive connection pools (undici) by upstream and retry policy. A pool
 * unused for a minute is closed — sandboxes come and go — by a sweep that
 * runs while pools exist and never keeps the process alive.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, { pool: Pool; used: number }>()
  private sweeper: NodeJS.Timeout | undefined

  /**
   * `tls`: HTTPS to the upstream, its certificate unchecked (`true`, see
   * `startTls`) or checked as `TlsVerify` says. `window`: new connections
   * are made through it (a pool per window: a new one after a sandbox's
   * windows were dropped).
   */
  get(
    host: string,
    port: number,
    retry?: DialRetry,
    tls: boolean | TlsVerify = false,
    window?: ConnectWindowHandle,
  ): Pool {
    const scheme = tls === false ? 'http' : tls === true ? 'https' : `https+${tls.servername}`
    const key = `${scheme}:${host}:${port}:${retry ? `${retry.retries}/${retry.initialDelayMs}` : '-'}:${window?.id ?? '-'}`
    let entry = this.pools.get(key)
    if (!entry) {
      if (this.pools.size >= MAX_POOLS) this.evictOldest()
      const plain = httpUrl(host, port)
      const origin = tls ? plain.replace(/^http:/, 'https:') : plain
      const tlsOptions = tls === false ? {} : tlsOptionsFor(tls === true ? undefined : tls)
      entry = {
        pool: new Pool(origin, {
          connections: 256,
          keepAliveTimeout: 30_000,
          // A proxied response may take as long as the sandbox computes.
          headersTimeout: 0,
          bodyTimeout: 0,
          connect: window
            ? throughWindow(host, port, window, retry, tls)
            : retry
              ? retrying(retry, tlsOptions)
              : buildConnector(tlsOptions),
        }),
        used: Date.now(),
      }
      this.pools.set(key, entry)
      this.sweeper ??= setInterval(() => this.sweep(), IDLE_MS).unref()
    }
    entry.used = Date.now()
    return entry.pool
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper)
    this.sweeper = undefined
    const pools = [...this.pools.values()]
    this.pools.clear()
    await Promise.allSettled(pools.map((e) => e.pool.destroy()))
  }

  private sweep(): void {
    const cutoff = Date.now() - IDLE_MS
    for (const [key, e] of this.pools) {
      if (e.used < cutoff) {
        this.pools.delete(key)
        void e.pool.close().catch(() => {})
      }
    }
    if (!this.pools.size) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  private evictOldest(): void {
    let oldest: [string, { pool: Pool; used: number }] | undefined
    for (const e of this.pools) if (!oldest || e[1].used < oldest[1].used) oldest = e
    if (oldest) {
      this.pools.delete(oldest[0])
      void oldest[1].pool.close().catch(() => {})
    }
  }
}

/** A connector that retries a refused connect briefly with backoff. */
function retrying(
  retry: DialRetry,
  options: buildConnector.BuildOptions,
): buildConnector.connector {
  const base = buildConnector(options)
  return (opts, callback) => {
    let attempt = 0
    let delay = retry.initialDelayMs
    const once = () =>
      base(opts, (err, socket) => {
        if (err && retriesDial(err, attempt++, retry)) {
          setTimeout(once, delay)
          delay *= 2
          return
        }
        if (err) callback(err, null)
        else callback(null, socket!)
      })
    once()
  }
}

/** A connector whose connections go through a connect window (see `dialUpstream`). */
function throughWindow(
  host: string,
  port: number,
  window: ConnectWindowHandle,
  retry: DialRetry | undefined,
  tls: boolean | TlsVerify,
): buildConnector.connector {
  return (_opts, callback) => {
    dialUpstream(host, port, { retry, tls, window }).then(
      (socket) => callback(null, socket),
      (err: Error) => callback(err, null),
    )
  }
}
