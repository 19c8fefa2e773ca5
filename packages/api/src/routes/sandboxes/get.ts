import { createRoute, z } from '@hono/zod-openapi'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, noQuery, sandboxIdParams } from '../params.js'
import { detailView } from '../views.js'

const route = createRoute({
  method: 'get',
  path: '/sandboxes/{sandboxID}',
  request: { params: sandboxIdParams, query: noQuery },
  responses: {
    200: {
      description: 'The sandbox (SandboxDetail)',
      content: {
        'application/json': { schema: z.record(z.string(), z.unknown()).openapi('SandboxDetail') },
      },
    },
    ...errorResponses,
  },
})

export function registerGet(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const { sandbox, diskUsedBytes, isolation } = await deps.engine.describe(
      c.get('team'),
      c.req.valid('param').sandboxID,
    )
    return c.json(
      {
        ...detailView(sandbox, deps.view),
        // Warren extension: what the sandbox's disk (diskSizeMB) holds now.
        ...(diskUsedBytes !== undefined ? { diskUsedMB: Math.ceil(diskUsedBytes / 2 ** 20) } : {}),
        // Warren extension: 'runc' or 'gvisor' (asked of its node; absent when the node is unreachable).
        ...(isolation !== undefined ? { isolation } : {}),
      },
      200,
    )
  })
}
