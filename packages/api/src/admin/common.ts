import { z } from '@hono/zod-openapi'
import type { Placement } from '../placement/nodes.js'
import type { App } from '../routes/deps.js'
import { errorResponses, errorSchema } from '../routes/params.js'
import type { Db } from '../store/db.js'
import type { NewTeamLimits } from '../store/teams.js'

export type AdminApp = App

/** What the admin API needs: the store, the nodes, and the limits new teams get. */
export interface AdminDeps {
  db: Db
  placement: Placement
  teamDefaults: NewTeamLimits
}

/** A team by its id or its name. */
export const teamIdParams = z.object({
  teamID: z
    .string()
    .min(1)
    .max(100)
    .openapi({ param: { name: 'teamID', in: 'path' }, example: 'default' }),
})

export const adminErrors = {
  ...errorResponses,
  403: {
    description: 'The API key is not an admin key',
    content: { 'application/json': { schema: errorSchema } },
  },
} as const
