import { WarrenError } from '@warren/shared'
import { z } from 'zod'
import { type HttpTransport, readBody } from './http.js'

export interface Credentials {
  username: string
  password: string
}

export interface Challenge {
  scheme: string
  params: Record<string, string>
}

/**
 * Parses `WWW-Authenticate`, e.g. `Bearer realm="https://auth.docker.io/token",
 * service="registry.docker.io",scope="repository:library/python:pull"`;
 * several challenges may share one header.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = []
  let i = 0
  const skip = (chars: string) => {
    while (i < header.length && chars.includes(header[i]!)) i++
  }
  const token = (): string => {
    const m = /^[\w!#$%&'*+.^`|~-]+/.exec(header.slice(i))
    i += m ? m[0].length : 0
    return m ? m[0] : ''
  }
  while (i < header.length) {
    skip(' \t,')
    const scheme = token()
    if (!scheme) break
    const params: Record<string, string> = {}
    for (;;) {
      skip(' \t')
      const start = i
      const key = token()
      skip(' \t')
      if (!key || header[i] !== '=') {
        // Not a parameter: the next challenge's scheme, or the end.
        i = start
        break
      }
      i++
      skip(' \t')
      let value = ''
      if (header[i] === '"') {
        for (i++; i < header.length && header[i] !== '"'; i++) {
          if (header[i] === '\\') i++
          value += header[i] ?? ''
        }
        i++
      } else {
        value = token()
      }
      params[key.toLowerCase()] = value
      skip(' \t')
      if (header[i] !== ',') break
      i++
    }
    out.push({ scheme: scheme.toLowerCase(), params })
  }
  return out
}

const tokenResponse = z.object({
  token: z.string().optional(),
  access_token: z.string().optional(),
  expires_in: z.number().optional(),
})

export interface Token {
  value: string
  /** Epoch ms after which the token is fetched again. */
  expiresAt: number
}

/**
 * Asks a registry's token service for a bearer token (the Docker token
 * protocol): anonymously, or with the user's credentials as Basic auth.
 * The realm is whatever the registry named; credentials are only sent over
 * HTTPS, or plain HTTP on loopback and listed insecure hosts (enforced by
 * the transport).
 */
export async function fetchToken(
  http: HttpTransport,
  challenge: Challenge,
  scope: string,
  creds: Credentials | undefined,
  insecure: readonly string[],
  registry: string,
): Promise<Token> {
  const realm = challenge.params.realm
  if (!realm)
    throw new WarrenError('bad_gateway', `${registry} sent a Bearer challenge without a realm`)
  let url: URL
  try {
    url = new URL(realm)
  } catch {
    throw new WarrenError('bad_gateway', `${registry} named an invalid token realm '${realm}'`)
  }
  if (challenge.params.service) url.searchParams.set('service', challenge.params.service)
  url.searchParams.set('scope', challenge.params.scope ?? scope)
  const res = await http.request(url, {
    headers: { accept: 'application/json' },
    ...(creds ? { authorization: basic(creds) } : {}),
    insecure,
  })
  if (res.status === 401 || res.status === 403) {
    res.discard()
    throw new WarrenError(
      'unauthenticated',
      creds
        ? `${registry}: the token service refused the username or password of '${creds.username}'`
        : `${registry}: the token service refused an anonymous token`,
    )
  }
  if (res.status !== 200) {
    res.discard()
    throw new WarrenError('bad_gateway', `${registry}: the token service answered ${res.status}`)
  }
  let parsed: z.infer<typeof tokenResponse>
  try {
    parsed = tokenResponse.parse(JSON.parse((await readBody(res, 1 << 20)).toString()))
  } catch (err) {
    if (err instanceof WarrenError) throw err
    throw new WarrenError('bad_gateway', `${registry}: the token service sent no valid JSON`)
  }
  const value = parsed.token ?? parsed.access_token
  if (!value) throw new WarrenError('bad_gateway', `${registry}: the token service sent no token`)
  // The protocol's default lifetime is 60 s; renew a little early.
  const lifetime = Math.max(parsed.expires_in ?? 60, 10)
  return { value, expiresAt: Date.now() + (lifetime - 5) * 1000 }
}

export function basic(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
}
