import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import { type Logger, WARREN_VERSION } from '@warren/shared'
import type { Db } from '../store/db.js'
import { claimDelivery, type Delivery, dueDeliveries, settleDelivery } from '../store/webhooks.js'
import { SIGNATURE_HEADER, signatureHeader } from './sign.js'
import { guardedLookup, refusedAddress } from './target.js'

export interface DelivererOptions {
  /** Deliveries this replica makes at once. */
  concurrency: number
  maxAttempts: number
  /** The first retry's delay; doubled at each next one, up to MAX_RETRY_MS. */
  retryBaseMs: number
  allowPrivate: boolean
  /** How often due deliveries are looked for (retries fall due without an event). */
  pollMs?: number
  /** One attempt's limit, from connect to the end of the answer. */
  timeoutMs?: number
}

const MAX_RETRY_MS = 600_000
/** An answer's body is read (to free the connection) up to this much, then dropped. */
const MAX_ANSWER_BYTES = 64 * 1024

/** The delay before attempt `attempts + 1`, after `attempts` failed ones. */
export function retryDelay(attempts: number, baseMs: number): number {
  return Math.min(MAX_RETRY_MS, baseMs * 2 ** Math.max(0, attempts - 1))
}

/**
 * Delivers webhook deliveries (each replica runs one). A pass looks for due
 * deliveries that head their (webhook, sandbox) queue, claims each with a
 * compare-and-set (one replica delivers it), POSTs it signed, and settles
 * it: delivered on a 2xx, else retried with exponential backoff until
 * `maxAttempts`, then failed — and the sandbox's next delivery goes on. A
 * sandbox's deliveries go strictly one after the other, in event order;
 * different sandboxes' go side by side, at most `concurrency` at once. A
 * replica that dies mid-delivery leaves a claim that runs out, and the
 * delivery is made again by whoever claims it next (at least once:
 * receivers deduplicate by event id).
 */
export class WebhookDeliverer {
  private inflight = 0
  private readonly running = new Set<Promise<void>>()
  private timer: NodeJS.Timeout | undefined
  private pass: Promise<void> | undefined
  private again = false
  private stopped = false
  private readonly pollMs: number
  private readonly timeoutMs: number

  constructor(
    private readonly db: Db,
    private readonly o: DelivererOptions,
    /** This replica's id (it may change when it registers again). */
    private readonly owner: () => string,
    private readonly log: Logger,
  ) {
    this.pollMs = o.pollMs ?? 500
    this.timeoutMs = o.timeoutMs ?? 10_000
  }

  start(): void {
    this.timer = setInterval(() => this.poke(), this.pollMs)
    this.timer.unref()
    this.poke()
  }

  /** New events may have made deliveries due. */
  poke(): void {
    if (this.stopped) return
    if (this.pass) {
      this.again = true
      return
    }
    this.pass = this.claimSome()
      .catch((err: unknown) => this.log.warn({ err }, 'webhooks: looking for deliveries failed'))
      .finally(() => {
        this.pass = undefined
        if (this.again) {
          this.again = false
          this.poke()
        }
      })
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    await this.pass
    await Promise.allSettled([...this.running])
  }

  private async claimSome(): Promise<void> {
    const room = this.o.concurrency - this.inflight
    if (room <= 0) return
    const now = Date.now()
    // More than the room: another replica may win some of them.
    for (const id of await dueDeliveries(this.db, now, room * 2)) {
      if (this.stopped || this.inflight >= this.o.concurrency) return
      const owner = this.owner()
      const d = await claimDelivery(this.db, id, owner, now, now + this.timeoutMs + 5000)
      if (!d) continue
      this.inflight++
      const p = this.attempt(d, owner)
        .catch((err: unknown) =>
          this.log.warn({ err, deliveryId: d.id }, 'webhooks: settling a delivery failed'),
        )
        .finally(() => {
          this.inflight--
          this.running.delete(p)
          this.poke()
        })
      this.running.add(p)
    }
  }

  private async attempt(
    d: Delivery & { url: string; secret: string },
    owner: string,
  ): Promise<void> {
    const { status, error } = await this.post(d)
    const now = Date.now()
    if (status !== null && status >= 200 && status < 300) {
      await settleDelivery(this.db, d.id, owner, { state: 'delivered', at: now, status, error })
      return
    }
    const log = { webhookId: d.webhookId, deliveryId: d.id, attempts: d.attempts, status, error }
    if (d.attempts >= this.o.maxAttempts) {
      this.log.warn(log, 'webhook delivery failed; giving up')
      await settleDelivery(this.db, d.id, owner, { state: 'failed', at: now, status, error })
      return
    }
    this.log.info(log, 'webhook delivery failed; retrying')
    const nextAt = now + retryDelay(d.attempts, this.o.retryBaseMs)
    await settleDelivery(this.db, d.id, owner, { state: 'pending', nextAt, status, error })
  }

  /** One POST; its status, or the reason it got none. */
  private post(d: Delivery & { url: string; secret: string }) {
    return new Promise<{ status: number | null; error: string | null }>((resolve) => {
      const url = new URL(d.url)
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
      // An address in the URL is connected to without a lookup: check it here.
      const refused = isIP(host) ? refusedAddress(host, this.o.allowPrivate) : undefined
      if (refused) return resolve({ status: null, error: `${refused}; not delivered` })
      const body = d.payload
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest
      const req = send(
        url,
        {
          method: 'POST',
          lookup: guardedLookup(this.o.allowPrivate) as never,
          timeout: this.timeoutMs,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'user-agent': `Warren-Webhooks/${WARREN_VERSION}`,
            'warren-webhook-id': d.webhookId,
            'warren-delivery-id': String(d.id),
            'warren-event-id': d.eventId,
            [SIGNATURE_HEADER]: signatureHeader(d.secret, body, Math.floor(Date.now() / 1000)),
          },
        },
        (res) => {
          // Redirects are not followed: a 3xx is a failed attempt (its target is unchecked).
          let read = 0
          res.on('data', (chunk: Buffer) => {
            read += chunk.length
            if (read > MAX_ANSWER_BYTES) res.destroy()
          })
          res.on('close', () => resolve({ status: res.statusCode ?? null, error: null }))
          res.on('error', () => {})
        },
      )
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)))
      req.on('error', (err) => resolve({ status: null, error: err.message }))
      req.end(body)
    })
  }
}
