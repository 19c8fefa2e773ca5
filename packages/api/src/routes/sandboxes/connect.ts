import { createRoute, z } from '@hono/zod-openapi'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, MAX_TIMEOUT_S, noQuery, sandboxIdParams } from '../params.js'
import { sandboxView } from '../views.js'

const body = z
  .strictObject({
    timeout: z.number().int().min(1).max(MAX_TIMEOUT_S).optional(),
    memory: z.boolean().optional(),
  })
  .openapi('ConnectSandbox')

function route(path: string) {
  return createRoute({
    method: 'post',
    path,
    request: { params: sandboxIdParams, query: noQuery, body: jsonBody(body, false) },
    responses: {
      200: { description: 'Running: lease extended (never shortened)' },
      201: { description: 'Was paused: resumed' },
      ...errorResponses,
    },
  })
}

export function registerConnect(app: App, deps: RouteDeps): void {
  for (const path of ['/sandboxes/{sandboxID}/connect', '/v2/sandboxes/{sandboxID}/connect']) {
    app.openapi(route(path), async (c) => {
      const req = c.req.valid('json')
      const { sandbox, resumed } = await deps.engine.connect(
        c.get('team'),
        c.req.valid('param').sandboxID,
        req.timeout ?? deps.defaultTimeoutS,
        req.memory,
      )
      return c.json(sandboxView(sandbox, deps.view), resumed ? 201 : 200)
    })
  }
}
