import type { IncomingMessage, ServerResponse } from 'node:http'
import { ACCESS_TOKEN_HEADER, hasValidToken } from '../auth.js'
import { log } from '../log.js'
import type { EnvdState } from '../state.js'
import { lookupUser } from '../users.js'
import { parseInitBody } from './init-body.js'
import { BodyError, readJsonBody, sendError, sendNoContent } from './respond.js'

/**
 * POST /init, for the orchestrator only (the node proxy never forwards it
 * from outside). The first call sets the access token; from then on /init
 * itself needs the current token, which is how a re-init after resume (same
 * token) or a rotation is authorised.
 */
export async function handleInit(
  req: IncomingMessage,
  res: ServerResponse,
  state: EnvdState,
): Promise<void> {
  if (!hasValidToken(state.accessToken, req.headers[ACCESS_TOKEN_HEADER])) {
    sendError(res, 401, 'unauthorized access, please provide a valid access token')
    return
  }
  let raw: unknown
  try {
    raw = await readJsonBody(req)
  } catch (err) {
    if (err instanceof BodyError) return sendError(res, err.status, err.message)
    throw err
  }
  const parsed = parseInitBody(raw)
  if (!parsed.ok) return sendError(res, 400, parsed.message)
  const body = parsed.value
  if (body.defaultUser !== undefined && !lookupUser(body.defaultUser)) {
    return sendError(res, 400, `default user '${body.defaultUser}' does not exist`)
  }
  // Sandboxes are containers sharing the host's clock, which is already
  // right; envd accepts and validates `timestamp` for E2B compatibility but
  // never sets the clock (it could not without CAP_SYS_TIME anyway).
  if (body.envVars) for (const [k, v] of Object.entries(body.envVars)) state.envVars.set(k, v)
  if (body.defaultUser !== undefined) state.defaultUser = body.defaultUser
  if (body.defaultWorkdir !== undefined) state.defaultWorkdir = body.defaultWorkdir
  if (body.accessToken !== undefined) state.accessToken = body.accessToken
  log.info('initialised', {
    envVars: body.envVars ? Object.keys(body.envVars).length : 0,
    defaultUser: state.defaultUser,
    defaultWorkdir: state.defaultWorkdir,
    secured: state.accessToken !== undefined,
  })
  sendNoContent(res)
}
