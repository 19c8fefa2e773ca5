import { createRoute, z } from '@hono/zod-openapi'
import { DEFAULT_REFRESH_S, MAX_REFRESH_S } from '../../lifecycle/lease.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, noQuery, sandboxIdParams } from '../params.js'

const body = z
  .strictObject({ duration: z.number().int().min(0).max(MAX_REFRESH_S).optional() })
  .openapi('SandboxRefreshRequest')

const route = createRoute({
  method: 'post',
  path: '/sandboxes/{sandboxID}/refreshes',
  request: { params: sandboxIdParams, query: noQuery, body: jsonBody(body, false) },
  responses: { 204: { description: 'Extended (never shortened)' }, ...errorResponses },
})

export function registerRefreshes(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const duration = c.req.valid('json').duration ?? DEFAULT_REFRESH_S
    await deps.engine.refresh(c.get('team'), c.req.valid('param').sandboxID, duration)
    return c.body(null, 204)
  })
}
