import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect'
import { basicAuthUser } from '../auth.js'
import { resolvePath } from '../paths.js'
import type { EnvdState } from '../state.js'
import { lookupUser, type User } from '../users.js'

/**
 * The user a Connect request acts as: the one named in the Basic
 * Authorization header, else the default user set by /init. An unknown user
 * is unauthenticated, as E2B envd answers.
 */
export function requestUser(ctx: HandlerContext, state: EnvdState): User {
  const name = basicAuthUser(ctx.requestHeader.get('authorization')) ?? state.defaultUser
  const user = lookupUser(name)
  if (!user) throw new ConnectError(`invalid user: '${name}' does not exist`, Code.Unauthenticated)
  return user
}

/** A client path resolved for `user` (see resolvePath). */
export function userPath(path: string, user: User, state: EnvdState): string {
  return resolvePath(path, user.home, state.defaultWorkdir)
}
