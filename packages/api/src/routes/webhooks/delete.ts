import { createRoute } from '@hono/zod-openapi'
import { WarrenError } from '@warren/shared'
import { deleteWebhook } from '../../store/webhooks.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, noQuery } from '../params.js'
import { webhookIdParams } from './views.js'

const route = createRoute({
  method: 'delete',
  path: '/webhooks/{webhookID}',
  summary: 'Removes a webhook; its pending deliveries are not sent',
  request: { params: webhookIdParams, query: noQuery },
  responses: { 204: { description: 'Removed' }, ...errorResponses },
})

export function registerDeleteWebhook(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const { webhookID } = c.req.valid('param')
    if (!(await deleteWebhook(deps.db, c.get('team').id, webhookID)))
      throw new WarrenError('not_found', `webhook ${webhookID} not found`)
    return c.body(null, 204)
  })
}
