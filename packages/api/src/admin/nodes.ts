import { createRoute, z } from '@hono/zod-openapi'
import { noQuery } from '../routes/params.js'
import { type AdminApp, type AdminDeps, adminErrors } from './common.js'

const nodeView = z
  .object({
    nodeId: z.string(),
    health: z.enum(['healthy', 'unhealthy', 'lost']),
    schedulable: z.string(),
    source: z.string(),
    cpuCount: z.number().int(),
    cpuAllocated: z.number(),
    memoryMbTotal: z.number().int(),
    memoryMbFree: z.number().int(),
    templates: z.array(z.string()),
    version: z.string(),
    lastSeen: z.string().nullable(),
  })
  .openapi('AdminNode')

const list = createRoute({
  method: 'get',
  path: '/admin/nodes',
  request: { query: noQuery },
  responses: {
    200: {
      description:
        'The nodes this API replica knows, with their capacity (what `warren node list` shows)',
      content: { 'application/json': { schema: z.array(nodeView) } },
    },
    ...adminErrors,
  },
})

export function registerAdminNodes(app: AdminApp, deps: AdminDeps): void {
  app.openapi(list, (c) =>
    c.json(
      deps.placement
        .list()
        .sort((a, b) => a.nodeId.localeCompare(b.nodeId))
        .map((n) => ({
          nodeId: n.nodeId,
          health: n.lost
            ? ('lost' as const)
            : n.healthy
              ? ('healthy' as const)
              : ('unhealthy' as const),
          schedulable: n.schedulable,
          source: n.source,
          cpuCount: n.cpuCount,
          cpuAllocated: n.cpuAllocated,
          memoryMbTotal: n.memoryMbTotal,
          memoryMbFree: Math.max(0, n.memoryMbFree),
          templates: [...(n.templates ?? [])].sort(),
          version: n.version,
          lastSeen: n.lastSeenMs ? new Date(n.lastSeenMs).toISOString() : null,
        })),
      200,
    ),
  )
}
