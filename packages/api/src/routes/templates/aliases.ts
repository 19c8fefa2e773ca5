import { createRoute, z } from '@hono/zod-openapi'
import { WarrenError } from '@warren/shared'
import { findTemplate } from '../../store/templates.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, noQuery } from '../params.js'
import { BUILT_IN } from './params.js'

const route = createRoute({
  method: 'get',
  path: '/templates/aliases/{alias}',
  request: {
    query: noQuery,
    params: z.object({
      alias: z
        .string()
        .min(1)
        .max(256)
        .openapi({ param: { name: 'alias', in: 'path' } }),
    }),
  },
  responses: {
    200: {
      description: 'The template with this name',
      content: {
        'application/json': {
          schema: z
            .object({ templateID: z.string(), public: z.boolean() })
            .openapi('TemplateAliasResponse'),
        },
      },
    },
    ...errorResponses,
  },
})

/**
 * What `Template.exists(name)` asks: 200 for the team's own name (or the
 * built-in base), 404 for anything else — another team's names included,
 * so the answer tells nothing about other teams.
 */
export function registerAliases(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const { alias } = c.req.valid('param')
    if (alias === BUILT_IN) return c.json({ templateID: BUILT_IN, public: true }, 200)
    const found = await findTemplate(deps.db, c.get('team').id, alias).catch(() => undefined)
    if (!found || found.template.id === alias)
      throw new WarrenError('not_found', `no template named '${alias.slice(0, 64)}'`)
    return c.json({ templateID: found.template.id, public: false }, 200)
  })
}
