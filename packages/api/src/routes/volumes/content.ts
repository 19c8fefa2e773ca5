import type { HttpBindings } from '@hono/node-server'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { WarrenError } from '@warren/shared'
import type { App, RouteDeps } from '../deps.js'

/**
 * `/volumecontent/{volumeID}/{dir|path|file}`: E2B's volume content API,
 * authorized by the volume's own token (not the API key) and streamed to
 * the volume's node both ways; never buffered here (files may be large).
 * Plain Hono routes: the OpenAPI document describes JSON bodies, these
 * carry files.
 */
export function registerVolumeContent(app: App, deps: RouteDeps): void {
  app.on(
    ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    '/volumecontent/:volumeID/:segment',
    async (c) => {
      const target = await deps.volumes.content.authorize({
        method: c.req.method,
        volumeId: c.req.param('volumeID'),
        segment: c.req.param('segment'),
        query: c.req.query(),
        authorization: c.req.header('authorization'),
      })
      const env = c.env as HttpBindings | undefined
      if (!env?.incoming)
        throw new WarrenError('unavailable', 'volume content needs the API to be served over HTTP')
      deps.volumes.content.forward(env.incoming, env.outgoing, target)
      return RESPONSE_ALREADY_SENT
    },
  )
}
