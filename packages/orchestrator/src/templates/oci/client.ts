import { type ErrorCode, WarrenError } from '@warren/shared'
import {
  basic,
  type Challenge,
  type Credentials,
  fetchToken,
  parseChallenges,
  type Token,
} from './auth.js'
import { type HttpResponse, type HttpTransport, readBody } from './http.js'
import type { RegistryEndpoint } from './reference.js'

export interface RegistryClient {
  /**
   * `GET`/`HEAD` of `/v2/<repository>/<path>`, authenticating the way the
   * registry asks (Bearer token or Basic). Answers any status but 401; a
   * refused authentication throws.
   */
  request(path: string, opts?: { method?: 'GET' | 'HEAD'; accept?: string }): Promise<HttpResponse>
}

export interface RegistryClientOptions {
  http: HttpTransport
  auth?: Credentials
  insecure?: readonly string[]
}

const RETRIES = 2

/**
 * One repository on one registry. The first request goes out anonymously;
 * a 401 names the scheme, and the request is sent once more with a token
 * (or Basic credentials) that later requests then reuse until it expires.
 */
export function createRegistryClient(
  endpoint: RegistryEndpoint,
  repository: string,
  opts: RegistryClientOptions,
): RegistryClient {
  const insecure = opts.insecure ?? []
  const scope = `repository:${repository}:pull`
  let challenge: Challenge | undefined
  let token: Token | undefined

  const authorization = async (): Promise<string | undefined> => {
    if (!challenge) return undefined
    if (challenge.scheme === 'basic') return opts.auth ? basic(opts.auth) : undefined
    if (!token || token.expiresAt < Date.now()) {
      token = await fetchToken(opts.http, challenge, scope, opts.auth, insecure, endpoint.host)
    }
    return `Bearer ${token.value}`
  }

  const send = async (path: string, method: 'GET' | 'HEAD', accept?: string) => {
    const url = new URL(`/v2/${repository}/${path}`, endpoint.baseUrl)
    const auth = await authorization()
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await opts.http.request(url, {
          method,
          headers: accept ? { accept } : {},
          ...(auth ? { authorization: auth } : {}),
          insecure,
        })
        if (res.status < 502 || res.status > 504 || attempt >= RETRIES) return res
        res.discard()
      } catch (err) {
        if (!(err instanceof WarrenError) || err.code !== 'unavailable' || attempt >= RETRIES) {
          throw err
        }
      }
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt))
    }
  }

  return {
    async request(path, { method = 'GET', accept } = {}) {
      let res = await send(path, method, accept)
      if (res.status !== 401) return res
      // Anonymous so far, or a token the registry no longer takes: once more
      // with what this 401 asks for.
      const offered = parseChallenges(String(res.headers['www-authenticate'] ?? ''))
      const next =
        offered.find((c) => c.scheme === 'bearer') ?? offered.find((c) => c.scheme === 'basic')
      if (next && (next.scheme === 'bearer' || opts.auth)) {
        res.discard()
        challenge = next
        token = undefined
        res = await send(path, method, accept)
        if (res.status !== 401) return res
      }
      throw await registryError(res, `${endpoint.host}/${repository}`, {
        credentials: opts.auth?.username,
      })
    },
  }
}

const STATUS_CODES: Record<number, ErrorCode> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  429: 'limit_exceeded',
}

/**
 * A registry's error as a WarrenError carrying the registry's own words
 * (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}`).
 */
export async function registryError(
  res: HttpResponse,
  what: string,
  ctx: { credentials?: string | undefined } = {},
): Promise<WarrenError> {
  let said = ''
  try {
    const body = res.body.readableEnded ? Buffer.alloc(0) : await readBody(res, 64 << 10)
    const errors = (
      JSON.parse(body.toString()) as { errors?: { code?: string; message?: string }[] }
    ).errors
    said = (errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(' ')).join('; ')
  } catch {
    // Not JSON (or no body, as for HEAD): the status says enough.
  }
  const code = STATUS_CODES[res.status] ?? 'bad_gateway'
  const why =
    res.status === 401
      ? ctx.credentials
        ? `the registry refused the credentials of '${ctx.credentials}'`
        : 'the registry requires authentication and no credentials were given'
      : res.status === 404
        ? 'not found at the registry'
        : res.status === 429
          ? 'the registry is rate limiting pulls'
          : `the registry answered ${res.status}`
  return new WarrenError(code, `${what}: ${why}${said ? ` (${said})` : ''}`, {
    details: { status: res.status },
  })
}
