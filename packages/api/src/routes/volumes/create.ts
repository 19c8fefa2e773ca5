import { createRoute, z } from '@hono/zod-openapi'
import { VOLUME_MAX_MB, VOLUME_MIN_MB, volumeNameSchema } from '@warren/shared'
import { createVolume } from '../../volumes/manage.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, noQuery } from '../params.js'
import { volumeAndTokenSchema, volumeAndTokenView } from './views.js'

const newVolume = z
  .strictObject({
    name: volumeNameSchema,
    sizeMB: z
      .number()
      .int()
      .min(VOLUME_MIN_MB)
      .max(VOLUME_MAX_MB)
      .optional()
      .describe('Warren: the size limit in MB (default WARREN_VOLUME_SIZE_MB)'),
  })
  .openapi('NewVolume')

const route = createRoute({
  method: 'post',
  path: '/volumes',
  request: { query: noQuery, body: jsonBody(newVolume) },
  responses: {
    201: {
      description: 'Volume created',
      content: { 'application/json': { schema: volumeAndTokenSchema } },
    },
    ...errorResponses,
  },
})

export function registerCreateVolume(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const body = c.req.valid('json')
    const volume = await createVolume(deps.volumes, c.get('team').id, {
      name: body.name,
      sizeMb: body.sizeMB ?? deps.volumes.defaultSizeMb,
    })
    return c.json(volumeAndTokenView(volume, deps.view.domain), 201)
  })
}
