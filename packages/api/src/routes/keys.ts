import { createRoute, z } from '@hono/zod-openapi'
import { createApiKey, listApiKeys, revokeApiKey } from '../store/teams.js'
import type { App, RouteDeps } from './deps.js'
import { errorResponses, jsonBody, noQuery } from './params.js'

// A team's own keys, managed with one of them (the dashboard's "API keys"
// pane): list, create, revoke. Keys made here are never admin keys, and
// another team's key is as unknown as a missing one. Admin keys are made by
// operators (/admin/teams/{teamID}/keys, `warren keys create --admin`).

export const apiKeyView = z
  .object({
    id: z.string(),
    teamId: z.string(),
    name: z.string(),
    mask: z.string(),
    admin: z.boolean(),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi('ApiKey')

export const createdKeyView = apiKeyView.extend({ key: z.string() }).openapi('CreatedApiKey')

export const keyName = z.string().trim().min(1).max(100)

export function toKeyView(k: Awaited<ReturnType<typeof listApiKeys>>[number]) {
  return {
    id: k.id,
    teamId: k.teamId,
    name: k.name,
    mask: k.mask,
    admin: k.admin,
    createdAt: new Date(k.createdAt).toISOString(),
    revokedAt: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
  }
}

const teamView = z
  .object({
    id: z.string(),
    name: z.string(),
    maxConcurrent: z.number().int(),
    maxLifetimeS: z.number().int(),
  })
  .openapi('Team')

const me = createRoute({
  method: 'get',
  path: '/me',
  request: { query: noQuery },
  responses: {
    200: {
      description: "The caller's team and its limits, and whether the key is an admin key",
      content: {
        'application/json': {
          schema: z.object({ team: teamView, keyId: z.string(), admin: z.boolean() }),
        },
      },
    },
    ...errorResponses,
  },
})

const list = createRoute({
  method: 'get',
  path: '/api-keys',
  request: { query: noQuery },
  responses: {
    200: {
      description: "The team's keys, masked (revoked ones too)",
      content: { 'application/json': { schema: z.array(apiKeyView) } },
    },
    ...errorResponses,
  },
})

const create = createRoute({
  method: 'post',
  path: '/api-keys',
  request: { query: noQuery, body: jsonBody(z.strictObject({ name: keyName })) },
  responses: {
    201: {
      description: 'A new key of the caller’s team; `key` is shown this once',
      content: { 'application/json': { schema: createdKeyView } },
    },
    ...errorResponses,
  },
})

const revoke = createRoute({
  method: 'delete',
  path: '/api-keys/{apiKeyID}',
  request: {
    query: noQuery,
    params: z.object({
      apiKeyID: z
        .string()
        .uuid()
        .openapi({ param: { name: 'apiKeyID', in: 'path' } }),
    }),
  },
  responses: { 204: { description: 'Revoked' }, ...errorResponses },
})

export function registerKeys(app: App, deps: RouteDeps): void {
  app.openapi(me, (c) => {
    const { team, keyId, admin } = c.get('caller')
    return c.json({ team, keyId, admin }, 200)
  })
  app.openapi(list, async (c) =>
    c.json((await listApiKeys(deps.db, c.get('team').id)).map(toKeyView), 200),
  )
  app.openapi(create, async (c) => {
    const { key, info } = await createApiKey(deps.db, c.get('team').id, c.req.valid('json').name)
    return c.json({ ...toKeyView(info), key }, 201)
  })
  app.openapi(revoke, async (c) => {
    await revokeApiKey(deps.db, c.req.valid('param').apiKeyID, c.get('team').id)
    return c.body(null, 204)
  })
}
