import { WarrenError } from '@warren/shared'
import type { MiddlewareHandler } from 'hono'
import type { Db } from '../store/db.js'
import { authenticateCaller, type Caller, type Team } from '../store/teams.js'

export type ApiEnv = { Variables: { team: Team; caller: Caller } }

/** X-API-Key → the key's team, for every route behind it. */
export function requireApiKey(db: Db): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const caller = await authenticateCaller(db, c.req.header('x-api-key'))
    c.set('team', caller.team)
    c.set('caller', caller)
    await next()
  }
}

/**
 * After requireApiKey: only an admin key passes. The dashboard hides what a
 * key cannot do, but this is the guard.
 */
export const requireAdmin: MiddlewareHandler<ApiEnv> = async (c, next) => {
  if (!c.get('caller').admin) throw new WarrenError('forbidden', 'this API key is not an admin key')
  await next()
}
