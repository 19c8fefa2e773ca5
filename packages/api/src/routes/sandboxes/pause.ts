import { createRoute, z } from '@hono/zod-openapi'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, noQuery, sandboxIdParams } from '../params.js'

const body = z
  .strictObject({
    memory: z
      .boolean()
      .optional()
      .openapi({ description: 'false: keep only the files; a resume then boots fresh processes' }),
  })
  .openapi('SandboxPauseRequest')

const route = createRoute({
  method: 'post',
  path: '/sandboxes/{sandboxID}/pause',
  request: { params: sandboxIdParams, query: noQuery, body: jsonBody(body, false) },
  responses: {
    204: {
      description: 'Paused: processes frozen (or dropped), writable layer kept as a snapshot',
    },
    ...errorResponses,
  },
})

export function registerPause(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    await deps.engine.pause(
      c.get('team'),
      c.req.valid('param').sandboxID,
      c.req.valid('json').memory ?? true,
    )
    return c.body(null, 204)
  })
}
