import { randomBytes } from 'node:crypto'
import { createRoute, z } from '@hono/zod-openapi'
import { EVENT_KINDS } from '../../events/kinds.js'
import { createWebhook } from '../../store/webhooks.js'
import { checkWebhookUrl } from '../../webhooks/target.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody } from '../params.js'
import { webhookSchema, webhookView } from './views.js'

const body = z.strictObject({
  url: z.string().max(2048).openapi({ example: 'https://example.com/warren-events' }),
  secret: z.string().min(16).max(256).optional().openapi({
    description: 'HMAC-SHA256 key of the signatures; one is made (and returned once) if absent',
  }),
  kinds: z
    .array(z.enum(EVENT_KINDS))
    .min(1)
    .optional()
    .openapi({ description: 'Event kinds delivered; default all' }),
})

const route = createRoute({
  method: 'post',
  path: '/webhooks',
  summary: "Registers a webhook for the team's lifecycle events",
  request: { body: jsonBody(body) },
  responses: {
    201: {
      description: 'Registered; the secret is shown in this answer only',
      content: {
        'application/json': { schema: webhookSchema.extend({ secret: z.string() }) },
      },
    },
    ...errorResponses,
    429: { description: 'The team has the most webhooks it may have' },
  },
})

export function registerCreateWebhook(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const b = c.req.valid('json')
    const url = checkWebhookUrl(b.url, deps.webhooks.allowPrivate)
    const secret = b.secret ?? `whsec_${randomBytes(24).toString('hex')}`
    const hook = await createWebhook(deps.db, {
      teamId: c.get('team').id,
      url: url.toString(),
      secret,
      kinds: b.kinds ? [...new Set(b.kinds)] : [...EVENT_KINDS],
      createdAt: deps.clock.now(),
    })
    return c.json({ ...webhookView(hook), secret }, 201)
  })
}
