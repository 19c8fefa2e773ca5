import type { MiddlewareHandler } from 'hono'
import type { Db } from '../store/db.js'
import { authenticateKey, type Team } from '../store/teams.js'

export type ApiEnv = { Variables: { team: Team } }

/** X-API-Key → the key's team, for every route behind it. */
export function requireApiKey(db: Db): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    c.set('team', await authenticateKey(db, c.req.header('x-api-key')))
    await next()
  }
}
