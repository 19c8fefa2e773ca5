import { createRoute, z } from '@hono/zod-openapi'
import { WarrenError } from '@warren/shared'
import { getWebhook, listDeliveries, listWebhooks, withoutSecret } from '../../store/webhooks.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, noQuery } from '../params.js'
import {
  deliverySchema,
  deliveryView,
  webhookIdParams,
  webhookSchema,
  webhookView,
} from './views.js'

const list = createRoute({
  method: 'get',
  path: '/webhooks',
  summary: "The team's webhooks",
  request: { query: noQuery },
  responses: {
    200: {
      description: 'Webhooks, oldest first',
      content: { 'application/json': { schema: z.array(webhookSchema) } },
    },
    ...errorResponses,
  },
})

const one = createRoute({
  method: 'get',
  path: '/webhooks/{webhookID}',
  request: { params: webhookIdParams, query: noQuery },
  responses: {
    200: { description: 'The webhook', content: { 'application/json': { schema: webhookSchema } } },
    ...errorResponses,
  },
})

const deliveries = createRoute({
  method: 'get',
  path: '/webhooks/{webhookID}/deliveries',
  summary: "A webhook's recent deliveries, newest first (kept WARREN_EVENTS_RETENTION)",
  request: {
    params: webhookIdParams,
    query: z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
  },
  responses: {
    200: {
      description: 'Deliveries',
      content: { 'application/json': { schema: z.array(deliverySchema) } },
    },
    ...errorResponses,
  },
})

export function registerReadWebhooks(app: App, deps: RouteDeps): void {
  const find = async (teamId: string, id: string) => {
    const w = await getWebhook(deps.db, teamId, id)
    if (!w) throw new WarrenError('not_found', `webhook ${id} not found`)
    return w
  }
  app.openapi(list, async (c) =>
    c.json((await listWebhooks(deps.db, c.get('team').id)).map(webhookView), 200),
  )
  app.openapi(one, async (c) => {
    const w = await find(c.get('team').id, c.req.valid('param').webhookID)
    return c.json(webhookView(withoutSecret(w)), 200)
  })
  app.openapi(deliveries, async (c) => {
    const w = await find(c.get('team').id, c.req.valid('param').webhookID)
    const rows = await listDeliveries(deps.db, w.id, c.req.valid('query').limit)
    return c.json(rows.map(deliveryView), 200)
  })
}
