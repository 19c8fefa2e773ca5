import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  judgeCredential,
  presentedCredential,
  refuseCaller,
  sandboxAddressOf,
} from '@warren/shared'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** Sandboxes the keepalive series may name at once; others are counted without a label. */
export const MAX_KEEPALIVE_SERIES = 10_000

/**
 * The edge proxy's Prometheus metrics: requests and their durations by
 * status (a bounded set: the status code, or `other`), upgrades, and the
 * keepalive reports sent per sandbox — whose series are removed at the
 * next scrape once the catalog no longer has the sandbox as live.
 */
export class EdgeMetrics {
  readonly registry = new Registry()
  private readonly reported = new Set<string>()
  /** Pinned connections (see NativePins): answers batched until drained, and how many are open. */
  private pins: { drain(): void; readonly size: number } | undefined

  private readonly requests = new Counter({
    name: 'warren_proxy_requests_total',
    help: 'HTTP requests the edge answered, by status',
    labelNames: ['status'],
    registers: [this.registry],
    // The first metric collected: the durations after it include the drained answers too.
    collect: () => this.pins?.drain(),
  })
  private readonly duration = new Histogram({
    name: 'warren_proxy_request_duration_seconds',
    help: 'From the request to the end of its answer, by status',
    labelNames: ['status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  })
  private readonly upgrades = new Counter({
    name: 'warren_proxy_upgrades_total',
    help: 'Upgraded connections (WebSocket) the edge accepted for forwarding',
    registers: [this.registry],
  })
  private readonly keepalive = new Counter({
    name: 'warren_proxy_keepalive_reports_total',
    help: 'Keepalive reports sent to the API, per sandbox (gone with the sandbox)',
    labelNames: ['sandbox_id'],
    registers: [this.registry],
    collect: () => this.sweep(),
  })
  private readonly keepaliveUnlabelled = new Counter({
    name: 'warren_proxy_keepalive_reports_unlabelled_total',
    help: `Keepalive reports for sandboxes past the first ${MAX_KEEPALIVE_SERIES} with series`,
    registers: [this.registry],
  })
  private readonly pinned: Gauge = new Gauge({
    name: 'warren_proxy_pinned_connections',
    help: 'Client connections whose requests the edge carries natively now',
    registers: [this.registry],
    collect: (): void => this.pinned.set(this.pins?.size ?? 0),
  })

  constructor(private readonly isLive: (sandboxId: string) => boolean) {}

  /** Counts the answers of pinned connections, and how many are open. */
  followPins(pins: { drain(): void; readonly size: number }): void {
    this.pins = pins
  }

  /** Counts the exchange when its answer is finished. */
  watch(res: ServerResponse): void {
    const done = this.started()
    res.once('finish', () => done(res.statusCode))
  }

  /** A request begins; the function returned records its answer's status. */
  started(): (code: number) => void {
    const start = process.hrtime.bigint()
    return (code) => this.record(code, Number(process.hrtime.bigint() - start) / 1e9)
  }

  /** An answer, by status, that took `seconds` from its request. */
  record(code: number, seconds: number): void {
    const status = code >= 100 && code <= 599 ? String(code) : 'other'
    this.duration.observe({ status }, seconds)
    this.requests.inc({ status })
  }

  upgraded(): void {
    this.upgrades.inc()
  }

  keepaliveReported(sandboxId: string): void {
    if (!this.reported.has(sandboxId) && this.reported.size >= MAX_KEEPALIVE_SERIES) {
      this.keepaliveUnlabelled.inc()
      return
    }
    this.reported.add(sandboxId)
    this.keepalive.inc({ sandbox_id: sandboxId })
  }

  private sweep(): void {
    for (const id of this.reported) {
      if (this.isLive(id)) continue
      this.keepalive.remove({ sandbox_id: id })
      this.reported.delete(id)
    }
  }
}

/**
 * `GET /metrics` on the edge's own port for a request that names no
 * sandbox (a sandbox's own /metrics is forwarded as any path): answered
 * only with the cluster secret or the metrics token, judged in constant
 * time before anything else. Returns false when the request is not one.
 */
/** Whether `req` is for the edge's own /metrics, not a sandbox's. */
export function asksEdgeMetrics(req: IncomingMessage): boolean {
  if ((req.url ?? '').split('?')[0] !== '/metrics' || req.method !== 'GET') return false
  if (req.headers['e2b-sandbox-id'] !== undefined) return false
  return !sandboxAddressOf({ host: req.headers.host })
}

export function serveEdgeMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  contentType: string,
  render: () => Promise<string>,
  accepted: readonly string[],
): boolean {
  if (!asksEdgeMetrics(req)) return false
  const verdict = judgeCredential(presentedCredential(req.headers, { bearer: true }), accepted)
  if (verdict !== 'ok') {
    refuseCaller(res, verdict, "the edge proxy's /metrics")
    return true
  }
  render().then(
    (text) => {
      res.writeHead(200, { 'content-type': contentType })
      res.end(text)
    },
    () => {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ code: 'internal', message: 'the metrics could not be gathered' }))
    },
  )
  return true
}
