import { createRoute, z } from '@hono/zod-openapi'
import { WarrenError } from '@warren/shared'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, MAX_TIMEOUT_S, noQuery, sandboxIdParams } from '../params.js'
import { sandboxView } from '../views.js'

const body = z
  .strictObject({
    timeout: z.number().int().min(1).max(MAX_TIMEOUT_S).optional(),
    memory: z.boolean().optional(),
    autoPause: z.boolean().optional().openapi({ deprecated: true }),
  })
  .openapi('ResumedSandbox')

const route = createRoute({
  method: 'post',
  path: '/sandboxes/{sandboxID}/resume',
  request: { params: sandboxIdParams, query: noQuery, body: jsonBody(body, false) },
  responses: { 201: { description: 'Resumed (deprecated: use connect)' }, ...errorResponses },
})

/** The deprecated resume: like connect on a paused sandbox, but 409 when it runs. */
export function registerResume(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const req = c.req.valid('json')
    const team = c.get('team')
    const s = await deps.engine.get(team, c.req.valid('param').sandboxID)
    if (
      req.autoPause !== undefined &&
      (req.autoPause ? 'pause' : 'kill') !== s.lifecycle.onTimeout
    ) {
      throw new WarrenError(
        'invalid_argument',
        'autoPause cannot change the lifecycle of an existing sandbox',
      )
    }
    if (s.state === 'running')
      throw new WarrenError('conflict', `sandbox ${s.sandboxId} is already running`)
    const resumed = await deps.engine.resume(s, {
      timeoutS: req.timeout ?? deps.defaultTimeoutS,
      memory: req.memory,
      trigger: 'api',
    })
    return c.json(sandboxView(resumed, deps.view), 201)
  })
}
