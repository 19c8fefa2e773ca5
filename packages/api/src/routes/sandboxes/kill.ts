import { createRoute } from '@hono/zod-openapi'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, noQuery, sandboxIdParams } from '../params.js'

const route = createRoute({
  method: 'delete',
  path: '/sandboxes/{sandboxID}',
  request: { params: sandboxIdParams, query: noQuery },
  responses: { 204: { description: 'Killed' }, ...errorResponses },
})

export function registerKill(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    await deps.engine.kill(c.get('team'), c.req.valid('param').sandboxID)
    return c.body(null, 204)
  })
}
