import { createRoute, z } from '@hono/zod-openapi'
import { WarrenError } from '@warren/shared'
import {
  assignTags,
  findTemplate,
  getTemplate,
  listTags,
  removeTags,
} from '../../store/templates.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, noQuery } from '../params.js'
import { splitNameTag, TAG, templateIdParams } from './params.js'
import { tagView } from './views.js'

const tags = z.array(z.string().regex(TAG, 'invalid tag')).min(1).max(32)

const assignRoute = createRoute({
  method: 'post',
  path: '/templates/tags',
  request: {
    query: noQuery,
    body: jsonBody(z.strictObject({ target: z.string().min(1).max(256), tags })),
  },
  responses: {
    201: {
      description: 'Tags assigned to the target build',
      content: {
        'application/json': {
          schema: z.object({ buildID: z.string(), tags: z.array(z.string()) }),
        },
      },
    },
    ...errorResponses,
  },
})

const removeRoute = createRoute({
  method: 'delete',
  path: '/templates/tags',
  request: {
    query: noQuery,
    body: jsonBody(z.strictObject({ name: z.string().min(1).max(256), tags })),
  },
  responses: { 204: { description: 'Tags removed' }, ...errorResponses },
})

const listRoute = createRoute({
  method: 'get',
  path: '/templates/{templateID}/tags',
  request: { query: noQuery, params: templateIdParams },
  responses: {
    200: {
      description: "The template's tags",
      content: { 'application/json': { schema: z.array(z.record(z.string(), z.unknown())) } },
    },
    ...errorResponses,
  },
})

/** Tags name builds: `name:tag` (the default tag is `default`). */
export function registerTags(app: App, deps: RouteDeps): void {
  app.openapi(assignRoute, async (c) => {
    const b = c.req.valid('json')
    const team = c.get('team')
    const { name, tag } = splitNameTag(b.target)
    const found = await findTemplate(deps.db, team.id, `${name}:${tag ?? 'default'}`)
    if (!found?.tagBuildId) throw new WarrenError('not_found', `template '${name}' not found`)
    await assignTags(deps.db, found.template.id, found.tagBuildId, b.tags, deps.clock.now())
    return c.json({ buildID: found.tagBuildId, tags: b.tags }, 201)
  })

  app.openapi(removeRoute, async (c) => {
    const b = c.req.valid('json')
    const found = await findTemplate(deps.db, c.get('team').id, b.name)
    if (!found) throw new WarrenError('not_found', `template '${b.name}' not found`)
    if (!(await removeTags(deps.db, found.template.id, b.tags)))
      throw new WarrenError('not_found', `template '${b.name}' has none of these tags`)
    return c.body(null, 204)
  })

  app.openapi(listRoute, async (c) => {
    const { templateID } = c.req.valid('param')
    const team = c.get('team')
    const found = await findTemplate(deps.db, team.id, templateID)
    const t = found?.template ?? (await getTemplate(deps.db, team.id, templateID))
    return c.json((await listTags(deps.db, t.id)).map(tagView), 200)
  })
}
