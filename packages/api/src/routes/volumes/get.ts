import { createRoute } from '@hono/zod-openapi'
import { WarrenError } from '@warren/shared'
import { getVolume } from '../../store/volumes.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, noQuery } from '../params.js'
import { volumeAndTokenSchema, volumeAndTokenView, volumeIdParams } from './views.js'

const route = createRoute({
  method: 'get',
  path: '/volumes/{volumeID}',
  request: { params: volumeIdParams, query: noQuery },
  responses: {
    200: {
      description: 'The volume and its content token',
      content: { 'application/json': { schema: volumeAndTokenSchema } },
    },
    ...errorResponses,
  },
})

export function registerGetVolume(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const { volumeID } = c.req.valid('param')
    const v = await getVolume(deps.db, volumeID)
    // Another team's volume, or one being made or removed, is not there for this caller.
    if (!v || v.teamId !== c.get('team').id || v.state !== 'ready')
      throw new WarrenError('not_found', `volume ${volumeID} not found`)
    return c.json(volumeAndTokenView(v, deps.view.domain), 200)
  })
}
