import { createRoute, z } from '@hono/zod-openapi'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, MAX_TIMEOUT_S, noQuery, sandboxIdParams } from '../params.js'
import { sandboxView } from '../views.js'

const route = createRoute({
  method: 'post',
  path: '/sandboxes/{sandboxID}/fork',
  request: {
    params: sandboxIdParams,
    query: noQuery,
    body: jsonBody(
      z.strictObject({
        timeout: z.number().int().min(1).max(MAX_TIMEOUT_S).optional(),
        count: z.number().int().min(1).max(100).optional(),
      }),
    ),
  },
  responses: {
    201: {
      description:
        "One result per fork: the new sandbox, or the error that stopped it. A runc fork boots a fresh process tree on the source's files (`forkedFrom: 'files'`); a gVisor fork continues the source's processes from its checkpoint (`forkedFrom: 'memory'`).",
      content: {
        'application/json': { schema: z.array(z.record(z.string(), z.unknown())) },
      },
    },
    ...errorResponses,
  },
})

export function registerFork(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const { sandboxID } = c.req.valid('param')
    const body = c.req.valid('json')
    const results = await deps.engine.fork(c.get('team'), sandboxID, {
      timeoutS: body.timeout,
      count: body.count ?? 1,
    })
    return c.json(
      results.map((r) =>
        'sandbox' in r
          ? {
              sandbox: {
                ...sandboxView(r.sandbox, deps.view),
                forkedFrom: r.sandbox.resumedFrom === 'memory' ? 'memory' : 'files',
              },
            }
          : { error: { code: r.error.status, message: r.error.message } },
      ),
      201,
    )
  })
}
