import { createRoute } from '@hono/zod-openapi'
import { deleteVolume } from '../../volumes/manage.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, noQuery } from '../params.js'
import { volumeIdParams } from './views.js'

const route = createRoute({
  method: 'delete',
  path: '/volumes/{volumeID}',
  request: { params: volumeIdParams, query: noQuery },
  responses: {
    204: { description: 'Volume deleted, with its files' },
    ...errorResponses,
  },
})

/** 409 while a sandbox that is not killed mounts the volume; 404 when it is not the team's. */
export function registerDeleteVolume(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    await deleteVolume(deps.volumes, c.get('team').id, c.req.valid('param').volumeID)
    return c.body(null, 204)
  })
}
