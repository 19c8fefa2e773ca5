import { Code, ConnectError, type Interceptor } from '@connectrpc/connect'
import { ACCESS_TOKEN_HEADER, hasValidToken } from './auth.js'
import { log } from './log.js'
import type { EnvdState } from './state.js'

/** Once /init set a token, every RPC needs it in X-Access-Token. */
export function authInterceptor(state: EnvdState): Interceptor {
  return (next) => async (req) => {
    if (!hasValidToken(state.accessToken, req.header.get(ACCESS_TOKEN_HEADER) ?? undefined)) {
      throw new ConnectError(
        'unauthorized access, please provide a valid access token',
        Code.Unauthenticated,
      )
    }
    return next(req)
  }
}

/** Unknown errors leave as a plain internal error; the cause stays in the log. */
export const internalErrorInterceptor: Interceptor = (next) => async (req) => {
  try {
    return await next(req)
  } catch (err) {
    if (err instanceof ConnectError) throw err
    log.error('rpc failed', { method: req.method.name, err })
    throw new ConnectError('internal error', Code.Internal)
  }
}
