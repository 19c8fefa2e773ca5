import { describe, expect, it } from 'vitest'
import { fileSignature } from '../file-signature.js'
import { ENVD_PORT } from './host.js'
import { refuseWake, type WakeCredentials } from './wake.js'

const ENVD = 'envd-token-0123456789'
const TRAFFIC = 'traffic-token-0123456789'
const secure = { envdAccessToken: ENVD, trafficAccessToken: TRAFFIC }

function signedUrl(token: string, expiration?: number): string {
  const path = '/home/user/a.txt'
  const signature = fileSignature({ path, operation: 'write', user: 'user', token, expiration })
  const q = new URLSearchParams({ path, username: 'user', signature })
  if (expiration !== undefined) q.set('signature_expiration', String(expiration))
  return `/files?${q}`
}

// The one rule the edge applies from its catalog and the control plane
// applies again before it resumes: a request may wake a sandbox when the
// running sandbox would accept it.
describe('refuseWake', () => {
  const now = Math.floor(Date.now() / 1000)
  it.each<[string, Parameters<typeof refuseWake>[0], WakeCredentials, string | undefined]>([
    [
      'user port, its traffic token',
      secure,
      { port: 8000, trafficAccessToken: TRAFFIC },
      undefined,
    ],
    ['user port, no traffic token', secure, { port: 8000 }, 'traffic_token'],
    ['user port, a wrong one', secure, { port: 8000, trafficAccessToken: 'x' }, 'traffic_token'],
    // envd's token says nothing about the traffic token, and the reverse.
    ['user port, only envd token', secure, { port: 8000, envdAccessToken: ENVD }, 'traffic_token'],
    ['user port of a public sandbox', { envdAccessToken: ENVD }, { port: 8000 }, undefined],
    ['envd, its token', secure, { port: ENVD_PORT, envdAccessToken: ENVD }, undefined],
    ['envd, no token', secure, { port: ENVD_PORT, trafficAccessToken: TRAFFIC }, 'envd_token'],
    ['envd, a wrong token', secure, { port: ENVD_PORT, envdAccessToken: 'x' }, 'envd_token'],
    [
      'envd of a sandbox without token',
      { trafficAccessToken: TRAFFIC },
      { port: ENVD_PORT },
      undefined,
    ],
    [
      'envd, a signed /files URL',
      secure,
      { port: ENVD_PORT, signedFiles: { method: 'POST', url: signedUrl(ENVD) } },
      undefined,
    ],
    [
      'envd, a URL signed with another token',
      secure,
      { port: ENVD_PORT, signedFiles: { method: 'POST', url: signedUrl('other') } },
      'envd_token',
    ],
    [
      'envd, an expired signed URL',
      secure,
      { port: ENVD_PORT, signedFiles: { method: 'POST', url: signedUrl(ENVD, now - 10) } },
      'envd_token',
    ],
    [
      'envd, a signed URL replayed with another method',
      secure,
      { port: ENVD_PORT, signedFiles: { method: 'GET', url: signedUrl(ENVD) } },
      'envd_token',
    ],
  ])('%s', (_name, sandbox, creds, want) => {
    expect(refuseWake(sandbox, creds)).toBe(want)
  })
})
