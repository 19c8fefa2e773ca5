import { timestampMs } from '@bufbuild/protobuf/wkt'
import { createRoute, z } from '@hono/zod-openapi'
import { listBuilds } from '../../store/template-builds.js'
import { getTemplate, listTemplates } from '../../store/templates.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses } from '../params.js'
import { BUILT_IN, templateIdParams } from './params.js'
import { buildView, templateView } from './views.js'

const listRoute = createRoute({
  method: 'get',
  path: '/templates',
  request: { query: z.strictObject({ teamID: z.string().optional() }) },
  responses: {
    200: {
      description: "Warren's base template and the team's own templates",
      content: {
        'application/json': {
          schema: z.array(z.record(z.string(), z.unknown())).openapi('Templates'),
        },
      },
    },
    ...errorResponses,
  },
})

const getRoute = createRoute({
  method: 'get',
  path: '/templates/{templateID}',
  request: {
    params: templateIdParams,
    query: z.strictObject({
      limit: z.coerce.number().int().min(1).max(100).optional(),
      nextToken: z.string().optional(),
    }),
  },
  responses: {
    200: {
      description: 'A template with its builds, newest first',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
    ...errorResponses,
  },
})

/** The built-in template as the nodes report it (the first node that has it). */
async function builtIn(deps: RouteDeps) {
  for (const node of deps.placement.list()) {
    const { templates } = await node.client.listTemplates({}).catch(() => ({ templates: [] }))
    const t = templates.find((x) => x.templateId === BUILT_IN)
    if (!t) continue
    const builtAt = new Date(t.builtAt ? timestampMs(t.builtAt) : 0).toISOString()
    return {
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
    }
  }
  return undefined
}

export function registerTemplates(app: App, deps: RouteDeps): void {
  app.openapi(listRoute, async (c) => {
    const team = c.get('team')
    const base = await builtIn(deps)
    const own = await Promise.all(
      (await listTemplates(deps.db, team.id)).map(async (t) => {
        const builds = await listBuilds(deps.db, t.id)
        const current = builds.find((b) => b.id === t.buildId) ?? builds[0]
        return templateView(t, current, builds.length)
      }),
    )
    return c.json([...(base ? [base] : []), ...own], 200)
  })

  app.openapi(getRoute, async (c) => {
    const { templateID } = c.req.valid('param')
    const q = c.req.valid('query')
    const t = await getTemplate(deps.db, c.get('team').id, templateID)
    const builds = await listBuilds(deps.db, t.id)
    const start = q.nextToken
      ? Math.max(
          0,
          builds.findIndex((b) => b.id === q.nextToken),
        )
      : 0
    const page = builds.slice(start, start + (q.limit ?? 100))
    const next = builds[start + page.length]
    if (next) c.header('x-next-token', next.id)
    return c.json(
      {
        templateID: t.id,
        public: false,
        aliases: t.aliases,
        names: t.aliases,
        createdAt: new Date(t.createdAt).toISOString(),
        updatedAt: new Date(t.updatedAt).toISOString(),
        lastSpawnedAt: null,
        spawnCount: 0,
        builds: page.map(buildView),
      },
      200,
    )
  })
}
