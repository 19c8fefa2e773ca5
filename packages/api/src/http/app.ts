import { OpenAPIHono } from '@hono/zod-openapi'
import { type Logger, REQUEST_ID_HEADER, requestIdFrom, withRequestId } from '@warren/shared'
import { bodyLimit } from 'hono/body-limit'
import { registerAdmin } from '../admin/register.js'
import { registerDashboard } from '../dashboard/serve.js'
import type { RouteDeps } from '../routes/deps.js'
import { registerEventStream } from '../routes/events/stream.js'
import { registerKeys } from '../routes/keys.js'
import { registerConnect } from '../routes/sandboxes/connect.js'
import { registerCreate } from '../routes/sandboxes/create.js'
import { registerFork } from '../routes/sandboxes/fork.js'
import { registerGet } from '../routes/sandboxes/get.js'
import { registerKill } from '../routes/sandboxes/kill.js'
import { registerList } from '../routes/sandboxes/list.js'
import { registerLogs } from '../routes/sandboxes/logs.js'
import { registerMetrics } from '../routes/sandboxes/metrics.js'
import { registerNetwork } from '../routes/sandboxes/network.js'
import { registerPause } from '../routes/sandboxes/pause.js'
import { registerRefreshes } from '../routes/sandboxes/refreshes.js'
import { registerResume } from '../routes/sandboxes/resume.js'
import { registerSnapshots } from '../routes/sandboxes/snapshots.js'
import { registerTimeout } from '../routes/sandboxes/timeout.js'
import { registerAliases } from '../routes/templates/aliases.js'
import { registerBuildStatus } from '../routes/templates/build-status.js'
import { registerDelete } from '../routes/templates/delete.js'
import { registerFiles } from '../routes/templates/files.js'
import { registerTemplates } from '../routes/templates/list.js'
import { registerRequestBuild } from '../routes/templates/request-build.js'
import { registerStartBuild } from '../routes/templates/start-build.js'
import { registerTags } from '../routes/templates/tags.js'
import { registerVolumeContent } from '../routes/volumes/content.js'
import { registerCreateVolume } from '../routes/volumes/create.js'
import { registerDeleteVolume } from '../routes/volumes/delete.js'
import { registerGetVolume } from '../routes/volumes/get.js'
import { registerListVolumes } from '../routes/volumes/list.js'
import { registerCreateWebhook } from '../routes/webhooks/create.js'
import { registerDeleteWebhook } from '../routes/webhooks/delete.js'
import { registerReadWebhooks } from '../routes/webhooks/read.js'
import { type ApiEnv, requireApiKey } from './auth.js'
import { notFound, renderError, validationHook } from './errors.js'

const MAX_BODY_BYTES = 4 * 2 ** 20

/** The E2B-compatible REST API. Errors everywhere are `{code, message}`. */
export function createApiApp(deps: RouteDeps, log: Logger): OpenAPIHono<ApiEnv> {
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: validationHook })
  app.onError(renderError(log))
  app.notFound(notFound)
  // One request id per request (the caller's, if valid): answered in the
  // same header, passed to every node call, printed in every log line.
  app.use('*', async (c, next) => {
    const requestId = requestIdFrom(c.req.header(REQUEST_ID_HEADER))
    c.header(REQUEST_ID_HEADER, requestId)
    const started = Date.now()
    await withRequestId(requestId, async () => {
      await next()
      if (c.req.path !== '/health')
        log.info(
          {
            method: c.req.method,
            path: c.req.path,
            status: c.res.status,
            ms: Date.now() - started,
          },
          'request',
        )
    })
  })
  // Every request body of this API is small JSON, but for template files
  // archives, whose upload route sets its own limit, and volume files,
  // which are streamed to their node.
  const limit = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) =>
      c.json({ code: 413, message: `request body over ${MAX_BODY_BYTES} bytes` }, 413),
  })
  app.use('*', (c, next) =>
    c.req.path.startsWith('/template-files/') || c.req.path.startsWith('/volumecontent/')
      ? next()
      : limit(c, next),
  )

  app.get('/health', (c) => c.json({ status: 'ok' }, 200))
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Warren API',
      version: '1',
      description:
        'E2B-compatible sandbox API. Warren extensions: lifecycle.keepalive, network.allowIn/denyIn, volume sizeMB, lifecycle events (GET /events) and webhooks. Authenticate with X-API-Key.',
    },
  })
  app.openAPIRegistry.registerComponent('securitySchemes', 'ApiKeyAuth', {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
  })

  // '/x/*' matches '/x' itself too: one pass per request.
  const auth = requireApiKey(deps.db)
  // (/volumecontent/* takes the volume's own token instead.)
  for (const path of [
    '/sandboxes/*',
    '/v2/*',
    '/v3/*',
    '/templates/*',
    '/snapshots',
    '/volumes/*',
    '/me',
    '/api-keys/*',
    '/events',
    '/webhooks/*',
  ])
    app.use(path, auth)

  registerCreate(app, deps)
  registerList(app, deps)
  registerMetrics(app, deps)
  registerGet(app, deps)
  registerKill(app, deps)
  registerTimeout(app, deps)
  registerRefreshes(app, deps)
  registerConnect(app, deps)
  registerPause(app, deps)
  registerResume(app, deps)
  registerNetwork(app, deps)
  registerLogs(app, deps)
  registerSnapshots(app, deps)
  registerFork(app, deps)
  // Static paths before '/templates/{templateID}'.
  registerTags(app, deps)
  registerAliases(app, deps)
  registerTemplates(app, deps)
  registerRequestBuild(app, deps)
  registerFiles(app, deps)
  registerStartBuild(app, deps)
  registerBuildStatus(app, deps)
  registerDelete(app, deps)
  registerCreateVolume(app, deps)
  registerListVolumes(app, deps)
  registerGetVolume(app, deps)
  registerDeleteVolume(app, deps)
  registerVolumeContent(app, deps)
  registerKeys(app, deps)
  registerAdmin(app, deps)
  registerDashboard(app)
  registerEventStream(app, deps)
  registerCreateWebhook(app, deps)
  registerReadWebhooks(app, deps)
  registerDeleteWebhook(app, deps)
  return app
}
