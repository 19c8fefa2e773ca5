import { createRoute, z } from '@hono/zod-openapi'
import { listVolumes } from '../../store/volumes.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, noQuery } from '../params.js'
import { volumeSchema, volumeView } from './views.js'

const route = createRoute({
  method: 'get',
  path: '/volumes',
  request: { query: noQuery },
  responses: {
    200: {
      description: "The team's volumes, oldest first",
      content: { 'application/json': { schema: z.array(volumeSchema) } },
    },
    ...errorResponses,
  },
})

export function registerListVolumes(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const volumes = await listVolumes(deps.db, c.get('team').id)
    return c.json(volumes.map(volumeView), 200)
  })
}
