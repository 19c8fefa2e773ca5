import { createRoute, z } from '@hono/zod-openapi'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, MAX_TIMEOUT_S, noQuery, sandboxIdParams } from '../params.js'

const body = z
  .strictObject({ timeout: z.number().int().min(0).max(MAX_TIMEOUT_S) })
  .openapi('SandboxTimeoutRequest')

const route = createRoute({
  method: 'post',
  path: '/sandboxes/{sandboxID}/timeout',
  request: { params: sandboxIdParams, query: noQuery, body: jsonBody(body) },
  responses: {
    204: { description: 'endAt = now + timeout (may shorten; 0 expires now)' },
    ...errorResponses,
  },
})

export function registerTimeout(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    await deps.engine.setTimeout(
      c.get('team'),
      c.req.valid('param').sandboxID,
      c.req.valid('json').timeout,
    )
    return c.body(null, 204)
  })
}
