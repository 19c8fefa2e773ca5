import { createRoute, z } from '@hono/zod-openapi'
import { WarrenError } from '@warren/shared'
import { listSandboxes } from '../../store/sandboxes.js'
import type { SandboxState } from '../../store/schema.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses } from '../params.js'
import { listedView } from '../views.js'
import { decodeCursor, encodeCursor, parseMetadataFilter } from './list-query.js'

const MAX_LIMIT = 1000

const v2Query = z.strictObject({
  metadata: z.string().optional(),
  state: z.string().optional(),
  template: z.string().optional(),
  startedAfter: z.string().datetime({ offset: true }).optional(),
  order: z.enum(['asc', 'desc']).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).optional(),
  nextToken: z.string().optional(),
})

const listed = z.array(z.record(z.string(), z.unknown())).openapi('ListedSandboxes')

const v2 = createRoute({
  method: 'get',
  path: '/v2/sandboxes',
  request: { query: v2Query },
  responses: {
    200: {
      description: 'Sandboxes, newest first by default; `x-next-token` names the next page',
      content: { 'application/json': { schema: listed } },
    },
    ...errorResponses,
  },
})

const v1 = createRoute({
  method: 'get',
  path: '/sandboxes',
  request: { query: z.strictObject({ metadata: z.string().optional() }) },
  responses: {
    200: { description: 'Running sandboxes', content: { 'application/json': { schema: listed } } },
    ...errorResponses,
  },
})

/** running also covers resuming; paused also covers pausing (what they are becoming). */
function statesFor(filter: string | undefined): SandboxState[] {
  const wanted = filter ? filter.split(',').map((s) => s.trim()) : ['running', 'paused']
  const states: SandboxState[] = []
  for (const w of wanted) {
    if (w === 'running') states.push('running', 'resuming')
    else if (w === 'paused') states.push('paused', 'pausing')
    else throw new WarrenError('invalid_argument', `state: unknown state '${w}' (running, paused)`)
  }
  return states
}

export function registerList(app: App, deps: RouteDeps): void {
  app.openapi(v2, async (c) => {
    const q = c.req.valid('query')
    const limit = q.limit ?? 100
    const { items, more } = await listSandboxes(deps.db, {
      teamId: c.get('team').id,
      states: statesFor(q.state),
      metadata: parseMetadataFilter(q.metadata),
      ...(q.template ? { templateId: q.template } : {}),
      ...(q.startedAfter ? { startedAfter: Date.parse(q.startedAfter) } : {}),
      order: q.order ?? 'desc',
      limit,
      ...(q.nextToken ? { cursor: decodeCursor(q.nextToken) } : {}),
    })
    const last = items.at(-1)
    if (more && last)
      c.header('x-next-token', encodeCursor({ startedAt: last.startedAt, id: last.sandboxId }))
    return c.json(items.map(listedView), 200)
  })

  app.openapi(v1, async (c) => {
    const { items } = await listSandboxes(deps.db, {
      teamId: c.get('team').id,
      states: ['running', 'resuming'],
      metadata: parseMetadataFilter(c.req.valid('query').metadata),
      order: 'desc',
      limit: 10_000,
    })
    return c.json(items.map(listedView), 200)
  })
}
