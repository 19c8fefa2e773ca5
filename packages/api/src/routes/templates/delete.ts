import { createRoute } from '@hono/zod-openapi'
import { WarrenError } from '@warren/shared'
import { deleteTemplateRows, findTemplate } from '../../store/templates.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, noQuery } from '../params.js'
import { BUILT_IN, templateIdParams } from './params.js'

const route = createRoute({
  method: 'delete',
  path: '/templates/{templateID}',
  request: { query: noQuery, params: templateIdParams },
  responses: { 204: { description: 'Template deleted' }, ...errorResponses },
})

/**
 * Deletes one of the team's templates (by id or name): its records go in
 * one transaction (refused while a build runs), then every node removes it
 * and the layers nothing else uses; sandboxes running or paused on it keep
 * what they stand on.
 */
export function registerDelete(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const { templateID } = c.req.valid('param')
    if (templateID === BUILT_IN)
      throw new WarrenError('forbidden', `'${BUILT_IN}' is Warren's built-in template`)
    const team = c.get('team')
    const found = await findTemplate(deps.db, team.id, templateID)
    if (!found) throw new WarrenError('not_found', `template '${templateID}' not found`)
    const id = found.template.id
    await deleteTemplateRows(deps.db, team.id, id)
    for (const node of deps.placement.list()) {
      await node.client.deleteTemplate({ templateId: id }).catch((err: unknown) => {
        if (!(err instanceof WarrenError && err.code === 'not_found'))
          deps.templates.log.warn(
            { err, templateId: id, nodeId: node.nodeId },
            'node kept a deleted template',
          )
      })
    }
    return c.body(null, 204)
  })
}
