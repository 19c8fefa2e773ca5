import { randomUUID } from 'node:crypto'
import { createRoute, z } from '@hono/zod-openapi'
import { isolationSchema, WarrenError } from '@warren/shared'
import { requestBuild } from '../../store/templates.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, noQuery } from '../params.js'
import { BUILT_IN, splitNameTag, TAG, TEMPLATE_NAME } from './params.js'

/** A build's defaults: base's own. */
const DEFAULTS = { cpuCount: 2, memoryMB: 512, diskSizeMB: 2048 }

const body = z
  .strictObject({
    name: z.string().min(1).max(256).optional(),
    /** Deprecated by E2B in favour of `name`. */
    alias: z.string().min(1).max(256).optional(),
    tags: z.array(z.string().regex(TAG, 'invalid tag')).max(32).optional(),
    cpuCount: z.number().int().min(1).max(64).optional(),
    memoryMB: z.number().int().min(128).max(65_536).optional(),
    /** Free disk the build needs: the template's disk size is at least this. */
    minFreeDiskMb: z.number().int().min(1).max(1_048_576).optional(),
    /**
     * Warren's extension: what the template's sandboxes run under unless a
     * create names one (null: back to runc); absent leaves it as it was.
     */
    isolation: isolationSchema.nullable().optional(),
  })
  .openapi('TemplateBuildRequestV3')

const response = z
  .object({
    templateID: z.string(),
    buildID: z.string(),
    names: z.array(z.string()),
    aliases: z.array(z.string()),
    tags: z.array(z.string()),
    public: z.boolean(),
  })
  .openapi('TemplateRequestResponseV3')

const route = createRoute({
  method: 'post',
  path: '/v3/templates',
  request: { query: noQuery, body: jsonBody(body) },
  responses: {
    202: { description: 'Build requested', content: { 'application/json': { schema: response } } },
    ...errorResponses,
  },
})

/** E2B's v3 build request: a template by name (made on first use) and a new pending build. */
export function registerRequestBuild(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const b = c.req.valid('json')
    const given = b.name ?? b.alias
    if (!given) throw new WarrenError('invalid_argument', 'name is required')
    if (b.name && b.alias) throw new WarrenError('invalid_argument', 'give name or alias, not both')
    const { name, tag } = splitNameTag(given)
    if (!TEMPLATE_NAME.test(name))
      throw new WarrenError('invalid_argument', `invalid template name '${name.slice(0, 64)}'`)
    if (name === BUILT_IN)
      throw new WarrenError('invalid_argument', `'${BUILT_IN}' is Warren's built-in template`)
    if (tag !== undefined && !TAG.test(tag))
      throw new WarrenError('invalid_argument', `invalid tag '${tag.slice(0, 64)}'`)
    const tags = [...new Set([...(tag ? [tag] : []), ...(b.tags ?? [])])]
    if (!tags.length) tags.push('default')
    const { templateId, buildId } = await requestBuild(deps.db, c.get('team').id, {
      maxTemplates: c.get('team').maxTemplates,
      alias: name,
      tags,
      cpuCount: b.cpuCount ?? DEFAULTS.cpuCount,
      memoryMb: b.memoryMB ?? DEFAULTS.memoryMB,
      diskSizeMb: Math.max(DEFAULTS.diskSizeMB, b.minFreeDiskMb ?? 0),
      ...(b.isolation !== undefined ? { isolation: b.isolation } : {}),
      buildId: randomUUID(),
      now: deps.clock.now(),
    })
    return c.json(
      {
        templateID: templateId,
        buildID: buildId,
        names: [name],
        aliases: [name],
        tags,
        public: false,
      },
      202,
    )
  })
}
