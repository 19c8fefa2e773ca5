import { createRoute, z } from '@hono/zod-openapi'
import { listSnapshots } from '../../store/snapshots.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, noQuery, sandboxIdParams } from '../params.js'
import { TEMPLATE_NAME } from '../templates/params.js'
import { decodeCursor, encodeCursor } from './list-query.js'

const snapshotView = z
  .object({ snapshotID: z.string(), names: z.array(z.string()) })
  .openapi('SnapshotInfo')

const create = createRoute({
  method: 'post',
  path: '/sandboxes/{sandboxID}/snapshots',
  request: {
    params: sandboxIdParams,
    query: noQuery,
    body: jsonBody(
      z.strictObject({
        name: z
          .string()
          .regex(TEMPLATE_NAME, 'lowercase letters, digits, -, _ and .; up to 128')
          .optional(),
      }),
    ),
  },
  responses: {
    201: {
      description:
        "A template of the sandbox's files (its processes are not part of it); the sandbox runs on",
      content: { 'application/json': { schema: snapshotView } },
    },
    ...errorResponses,
  },
})

const list = createRoute({
  method: 'get',
  path: '/snapshots',
  request: {
    query: z.strictObject({
      sandboxID: z.string().max(128).optional(),
      name: z.string().max(128).optional(),
      limit: z.coerce.number().int().min(1).max(1000).optional(),
      nextToken: z.string().optional(),
    }),
  },
  responses: {
    200: {
      description: "The team's snapshots, newest first; `x-next-token` names the next page",
      content: { 'application/json': { schema: z.array(snapshotView) } },
    },
    ...errorResponses,
  },
})

/** E2B's snapshots: templates made of a sandbox's files, deleted through DELETE /templates/{id}. */
export function registerSnapshots(app: App, deps: RouteDeps): void {
  app.openapi(create, async (c) => {
    const { sandboxID } = c.req.valid('param')
    const { name } = c.req.valid('json')
    const snap = await deps.engine.snapshot(c.get('team'), sandboxID, name)
    return c.json({ snapshotID: snap.snapshotId, names: snap.names }, 201)
  })

  app.openapi(list, async (c) => {
    const q = c.req.valid('query')
    const limit = q.limit ?? 100
    const { items, more } = await listSnapshots(deps.db, {
      teamId: c.get('team').id,
      sandboxId: q.sandboxID,
      name: q.name,
      limit,
      cursor: decodeCursor(q.nextToken),
    })
    const last = items.at(-1)
    if (more && last)
      c.header('x-next-token', encodeCursor({ startedAt: last.createdAt, id: last.snapshotId }))
    return c.json(
      items.map((s) => ({ snapshotID: s.snapshotId, names: s.names })),
      200,
    )
  })
}
