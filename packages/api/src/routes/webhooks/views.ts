import { z } from '@hono/zod-openapi'
import { EVENT_KINDS } from '../../events/kinds.js'
import type { Delivery, Webhook } from '../../store/webhooks.js'

export const webhookSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    kinds: z.array(z.enum(EVENT_KINDS)),
    createdAt: z.string(),
  })
  .openapi('Webhook')

export const deliverySchema = z
  .object({
    id: z.number().int(),
    eventId: z.string(),
    sandboxId: z.string(),
    state: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int(),
    nextAttemptAt: z.string().nullable(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .openapi('WebhookDelivery')

export const webhookIdParams = z.object({
  webhookID: z
    .string()
    .uuid()
    .openapi({ param: { name: 'webhookID', in: 'path' } }),
})

/** A webhook as the API shows it: never its secret. */
export function webhookView(w: Webhook): z.infer<typeof webhookSchema> {
  return { id: w.id, url: w.url, kinds: w.kinds, createdAt: new Date(w.createdAt).toISOString() }
}

export function deliveryView(d: Delivery): z.infer<typeof deliverySchema> {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString())
  return {
    id: d.id,
    eventId: d.eventId,
    sandboxId: d.sandboxId,
    state: d.state,
    attempts: d.attempts,
    nextAttemptAt: d.state === 'pending' ? iso(d.nextAt) : null,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    createdAt: new Date(d.createdAt).toISOString(),
    finishedAt: iso(d.finishedAt),
  }
}
