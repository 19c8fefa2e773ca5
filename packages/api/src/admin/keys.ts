import { createRoute, z } from '@hono/zod-openapi'
import { apiKeyView, createdKeyView, keyName, toKeyView } from '../routes/keys.js'
import { noQuery } from '../routes/params.js'
import { findTeam } from '../store/team-admin.js'
import { createApiKey, listApiKeys } from '../store/teams.js'
import { type AdminApp, type AdminDeps, adminErrors, teamIdParams } from './common.js'

const list = createRoute({
  method: 'get',
  path: '/admin/teams/{teamID}/keys',
  request: { query: noQuery, params: teamIdParams },
  responses: {
    200: {
      description: "A team's keys, masked",
      content: { 'application/json': { schema: z.array(apiKeyView) } },
    },
    ...adminErrors,
  },
})

const create = createRoute({
  method: 'post',
  path: '/admin/teams/{teamID}/keys',
  request: {
    query: noQuery,
    params: teamIdParams,
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z.strictObject({ name: keyName, admin: z.boolean().optional() }),
        },
      },
    },
  },
  responses: {
    201: {
      description: 'A new key of that team (an admin key when asked); `key` is shown this once',
      content: { 'application/json': { schema: createdKeyView } },
    },
    ...adminErrors,
  },
})

export function registerAdminKeys(app: AdminApp, deps: AdminDeps): void {
  app.openapi(list, async (c) => {
    const team = await findTeam(deps.db, c.req.valid('param').teamID)
    return c.json((await listApiKeys(deps.db, team.id)).map(toKeyView), 200)
  })
  app.openapi(create, async (c) => {
    const team = await findTeam(deps.db, c.req.valid('param').teamID)
    const b = c.req.valid('json')
    const { key, info } = await createApiKey(deps.db, team.id, b.name, { admin: b.admin ?? false })
    return c.json({ ...toKeyView(info), key }, 201)
  })
}
