import { createRoute, z } from '@hono/zod-openapi'
import { getBuild, readLogs } from '../../store/template-builds.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses } from '../params.js'
import { buildParams } from './params.js'
import { logEntryView, publicStatus } from './views.js'

const LEVELS = ['debug', 'info', 'warn', 'error'] as const
/** A level and every level above it. */
const atLeast = (level: (typeof LEVELS)[number] | undefined) =>
  level ? LEVELS.slice(LEVELS.indexOf(level)) : undefined

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

const statusRoute = createRoute({
  method: 'get',
  path: '/templates/{templateID}/builds/{buildID}/status',
  request: {
    params: buildParams,
    query: z.strictObject({
      logsOffset: int(0, 2 ** 31).optional(),
      limit: int(1, 1000).optional(),
      level: z.enum(LEVELS).optional(),
    }),
  },
  responses: {
    200: {
      description: 'The build status and its log entries from logsOffset',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
    ...errorResponses,
  },
})

const logsRoute = createRoute({
  method: 'get',
  path: '/templates/{templateID}/builds/{buildID}/logs',
  request: {
    params: buildParams,
    query: z.strictObject({
      cursor: int(0, Number.MAX_SAFE_INTEGER).optional(),
      direction: z.enum(['forward', 'backward']).optional(),
      level: z.enum(LEVELS).optional(),
      limit: int(1, 1000).optional(),
      source: z.enum(['temporary', 'persistent']).optional(),
    }),
  },
  responses: {
    200: {
      description: 'Build log entries',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
    ...errorResponses,
  },
})

/** E2B's build status (what `Template.build` polls) and build logs. */
export function registerBuildStatus(app: App, deps: RouteDeps): void {
  app.openapi(statusRoute, async (c) => {
    const { templateID, buildID } = c.req.valid('param')
    const q = c.req.valid('query')
    const build = await getBuild(deps.db, c.get('team').id, templateID, buildID)
    const levels = atLeast(q.level)
    const entries = await readLogs(deps.db, buildID, {
      offset: q.logsOffset ?? 0,
      limit: q.limit ?? 1000,
      ...(levels ? { levels } : {}),
    })
    return c.json(
      {
        templateID,
        buildID,
        status: publicStatus(build),
        logEntries: entries.map(logEntryView),
        logs: [],
        ...(build.status === 'error' && build.reason
          ? {
              reason: {
                message: build.reason.message,
                ...(build.reason.step ? { step: build.reason.step } : {}),
                logEntries: [],
              },
            }
          : {}),
      },
      200,
    )
  })

  app.openapi(logsRoute, async (c) => {
    const { templateID, buildID } = c.req.valid('param')
    const q = c.req.valid('query')
    await getBuild(deps.db, c.get('team').id, templateID, buildID)
    const levels = atLeast(q.level)
    const entries = await readLogs(deps.db, buildID, {
      ...(q.cursor !== undefined ? { sinceMs: q.cursor } : {}),
      limit: q.limit ?? 100,
      desc: q.direction === 'backward',
      ...(levels ? { levels } : {}),
    })
    return c.json({ logs: entries.map(logEntryView) }, 200)
  })
}
