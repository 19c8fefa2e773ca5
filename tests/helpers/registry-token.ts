// A Docker token service for the test registry (the protocol Docker Hub's
// auth.docker.io speaks): GET /token?service=&scope= with optional Basic
// credentials answers a JWT signed by a key whose certificate the registry
// trusts (`auth.token.rootcertbundle`). Loopback only.
import { execFileSync } from 'node:child_process'
import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'

export interface TokenUser {
  password: string
  /** Actions granted on every repository, e.g. ['pull'] or ['pull', 'push']. */
  actions: string[]
}

export interface TokenService {
  realm: string
  service: string
  issuer: string
  certPath: string
  /** Every request the service answered: who asked, and the status. */
  log: { user: string | null; scope: string | null; status: number }[]
  close(): Promise<void>
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url')

export async function startTokenService(
  dir: string,
  users: Record<string, TokenUser>,
  anonymousActions: string[] = [],
): Promise<TokenService> {
  const keyPath = join(dir, 'token.key')
  const certPath = join(dir, 'token.crt')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '1',
      '-subj',
      '/CN=warren-test-token',
    ],
    { stdio: 'ignore' },
  )
  const key = createPrivateKey(readFileSync(keyPath))
  const certDer = new X509Certificate(readFileSync(certPath)).raw
  const service = 'warren-test-registry'
  const issuer = 'warren-test-token-service'
  const log: TokenService['log'] = []

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const scope = url.searchParams.get('scope')
    let user: string | null = null
    let actions = anonymousActions
    const auth = req.headers.authorization
    if (auth?.startsWith('Basic ')) {
      const [name, ...rest] = Buffer.from(auth.slice(6), 'base64').toString().split(':')
      const u = users[name ?? '']
      user = name ?? ''
      if (!u || u.password !== rest.join(':')) {
        log.push({ user, scope, status: 401 })
        res.writeHead(401, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ details: 'incorrect username or password' }))
        return
      }
      actions = u.actions
    }
    const access = (scope ? scope.split(' ') : []).map((s) => {
      const [type, name, wanted] = s.split(':')
      return {
        type,
        name,
        actions: (wanted ?? '').split(',').filter((a) => actions.includes(a)),
      }
    })
    const now = Math.floor(Date.now() / 1000)
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] }
    const claims = {
      iss: issuer,
      sub: user ?? '',
      aud: service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    }
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    log.push({ user, scope, status: 200 })
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ token: `${input}.${b64url(sig)}`, expires_in: 300 }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    log,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
