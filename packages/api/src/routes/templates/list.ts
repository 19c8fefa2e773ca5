import { timestampMs } from '@bufbuild/protobuf/wkt'
import { createRoute, z } from '@hono/zod-openapi'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses } from '../params.js'

const route = createRoute({
  method: 'get',
  path: '/templates',
  request: { query: z.strictObject({ teamID: z.string().optional() }) },
  responses: {
    200: {
      description: 'Templates built on the nodes',
      content: {
        'application/json': {
          schema: z.array(z.record(z.string(), z.unknown())).openapi('Templates'),
        },
      },
    },
    ...errorResponses,
  },
})

export function registerTemplates(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const seen = new Map<string, Record<string, unknown>>()
    for (const node of deps.placement.list()) {
      const { templates } = await node.client.listTemplates({}).catch(() => ({ templates: [] }))
      for (const t of templates) {
        if (seen.has(t.templateId)) continue
        const builtAt = new Date(t.builtAt ? timestampMs(t.builtAt) : 0).toISOString()
        seen.set(t.templateId, {
          templateID: t.templateId,
          buildID: t.buildId,
          cpuCount: t.cpuCount,
          memoryMB: t.memoryMb,
          diskSizeMB: t.diskSizeMb,
          envdVersion: t.envdVersion,
          public: true,
          aliases: [t.templateId],
          names: [t.templateId],
          createdAt: builtAt,
          updatedAt: builtAt,
          createdBy: null,
          lastSpawnedAt: null,
          spawnCount: 0,
          buildCount: 1,
          buildStatus: 'ready',
        })
      }
    }
    return c.json([...seen.values()], 200)
  })
}
