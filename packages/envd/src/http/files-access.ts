import type { IncomingMessage } from 'node:http'
import { ACCESS_TOKEN_HEADER, hasValidToken, verifyFileSignature } from '../auth.js'
import { resolvePath } from '../paths.js'
import type { EnvdState } from '../state.js'
import { lookupUser, type User } from '../users.js'

export type FilesAccess =
  | { ok: true; user: User; path: string | undefined; rawPath: string | undefined }
  | { ok: false; status: number; message: string }

/**
 * Who may touch /files and as whom: with a token set, either the
 * X-Access-Token header (it must then be right) or a URL signed for this
 * path, operation and user (what uploadUrl/downloadUrl produce). The
 * `username` parameter (else the default user) is the acting user.
 */
export function filesAccess(
  req: IncomingMessage,
  url: URL,
  state: EnvdState,
  operation: 'read' | 'write',
): FilesAccess {
  const rawPath = url.searchParams.get('path') ?? undefined
  const username = url.searchParams.get('username') ?? undefined
  if (state.accessToken !== undefined) {
    const header = req.headers[ACCESS_TOKEN_HEADER]
    if (typeof header === 'string' && header !== '') {
      if (!hasValidToken(state.accessToken, header)) {
        return {
          ok: false,
          status: 401,
          message: 'access token present in header but does not match',
        }
      }
    } else {
      const check = verifyFileSignature({
        token: state.accessToken,
        path: rawPath ?? '',
        operation,
        user: username,
        signature: url.searchParams.get('signature') ?? undefined,
        expiration: url.searchParams.get('signature_expiration') ?? undefined,
      })
      if (!check.ok) return { ok: false, status: 401, message: check.message }
    }
  }
  const name = username || state.defaultUser
  const user = lookupUser(name)
  if (!user)
    return { ok: false, status: 401, message: `error looking up user '${name}': unknown user` }
  const path =
    rawPath === undefined ? undefined : resolvePath(rawPath, user.home, state.defaultWorkdir)
  return { ok: true, user, path, rawPath }
}
