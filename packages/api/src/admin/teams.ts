import { createRoute, z } from '@hono/zod-openapi'
import { isolationSchema } from '@warren/shared'
import { MAX_TIMEOUT_S, noQuery } from '../routes/params.js'
import { createTeam, findTeam, listTeams, setTeamLimits } from '../store/team-admin.js'
import { type AdminApp, type AdminDeps, adminErrors, teamIdParams } from './common.js'

const limits = {
  maxConcurrent: z.number().int().min(0).max(100_000),
  /** At least the longest lease a request may ask for would be pointless to cap below a minute. */
  maxLifetimeS: z
    .number()
    .int()
    .min(60)
    .max(365 * MAX_TIMEOUT_S),
  /** Memory its active sandboxes may hold together (MB); null: no limit. */
  maxMemoryMb: z
    .number()
    .int()
    .min(64)
    .max(1 << 30)
    .nullable(),
  /** Templates it may have (snapshots not counted); null: no limit. */
  maxTemplates: z.number().int().min(0).max(100_000).nullable(),
  /** The isolation its new sandboxes must have (and get unless they name it); null: any. */
  requiredIsolation: isolationSchema.nullable(),
}

const teamSummary = z
  .object({
    id: z.string(),
    name: z.string(),
    maxConcurrent: z.number().int(),
    maxLifetimeS: z.number().int(),
    maxMemoryMb: z.number().int().nullable(),
    maxTemplates: z.number().int().nullable(),
    requiredIsolation: isolationSchema.nullable(),
    createdAt: z.string(),
    activeSandboxes: z.number().int(),
    activeMemoryMb: z.number().int(),
    activeKeys: z.number().int(),
  })
  .openapi('TeamSummary')

const teamView = z.object({ id: z.string(), name: z.string(), ...limits }).openapi('AdminTeam')

const list = createRoute({
  method: 'get',
  path: '/admin/teams',
  request: { query: noQuery },
  responses: {
    200: {
      description: 'Every team with its limits and what it uses now',
      content: { 'application/json': { schema: z.array(teamSummary) } },
    },
    ...adminErrors,
  },
})

const create = createRoute({
  method: 'post',
  path: '/admin/teams',
  request: {
    query: noQuery,
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z.strictObject({
            name: z
              .string()
              .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ - (1-63)'),
            maxConcurrent: limits.maxConcurrent.optional(),
            maxLifetimeS: limits.maxLifetimeS.optional(),
            maxMemoryMb: limits.maxMemoryMb.optional(),
            maxTemplates: limits.maxTemplates.optional(),
            requiredIsolation: limits.requiredIsolation.optional(),
          }),
        },
      },
    },
  },
  responses: {
    201: {
      description: 'The new team (limits not given are the configured defaults)',
      content: { 'application/json': { schema: teamView } },
    },
    ...adminErrors,
  },
})

const setLimits = createRoute({
  method: 'patch',
  path: '/admin/teams/{teamID}',
  request: {
    query: noQuery,
    params: teamIdParams,
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z
            .strictObject({
              maxConcurrent: limits.maxConcurrent.optional(),
              maxLifetimeS: limits.maxLifetimeS.optional(),
              maxMemoryMb: limits.maxMemoryMb.optional(),
              maxTemplates: limits.maxTemplates.optional(),
              requiredIsolation: limits.requiredIsolation.optional(),
            })
            .refine((b) => Object.keys(b).length > 0, 'name at least one limit'),
        },
      },
    },
  },
  responses: {
    200: {
      description: 'The team with its new limits, applied from the next create or resume',
      content: { 'application/json': { schema: teamView } },
    },
    ...adminErrors,
  },
})

export function registerAdminTeams(app: AdminApp, deps: AdminDeps): void {
  app.openapi(list, async (c) =>
    c.json(
      (await listTeams(deps.db)).map((t) => ({
        ...t,
        createdAt: new Date(t.createdAt).toISOString(),
      })),
      200,
    ),
  )
  app.openapi(create, async (c) => {
    const b = c.req.valid('json')
    const team = await createTeam(deps.db, b.name, {
      maxConcurrent: b.maxConcurrent ?? deps.teamDefaults.maxConcurrent,
      maxLifetimeS: b.maxLifetimeS ?? deps.teamDefaults.maxLifetimeS,
      maxMemoryMb: b.maxMemoryMb ?? deps.teamDefaults.maxMemoryMb ?? null,
      maxTemplates: b.maxTemplates ?? deps.teamDefaults.maxTemplates ?? null,
      requiredIsolation: b.requiredIsolation ?? null,
    })
    return c.json(team, 201)
  })
  app.openapi(setLimits, async (c) => {
    const team = await findTeam(deps.db, c.req.valid('param').teamID)
    return c.json(await setTeamLimits(deps.db, team.id, c.req.valid('json')), 200)
  })
}
