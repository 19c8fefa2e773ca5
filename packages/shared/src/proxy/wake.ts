import { signedFilesRequest, verifyFileSignature } from '../file-signature.js'
import { ENVD_PORT } from './host.js'
import { tokenMatches } from './tokens.js'

/**
 * What one request to a sandbox carries that may let it wake the sandbox:
 * the port it is for and the credentials it brought. The edge proxy reads
 * them off the request and sends them along with its ResumeSandbox call; the
 * control plane judges them again before it resumes anything.
 */
export interface WakeCredentials {
  port: number
  /** X-Access-Token (envd's port). */
  envdAccessToken?: string | undefined
  /** e2b-traffic-access-token (other ports, when public traffic is off). */
  trafficAccessToken?: string | undefined
  /** A signed `/files` request: its method and URL (path and query). */
  signedFiles?: { method: string; url: string } | undefined
}

/** The tokens a sandbox asks of its traffic (null or absent: none). */
export interface SandboxTokens {
  envdAccessToken?: string | null | undefined
  trafficAccessToken?: string | null | undefined
}

export type WakeRefusal = 'traffic_token' | 'envd_token'

/**
 * Why a request may not wake a paused sandbox, if it may not: it must be one
 * the running sandbox would accept. Without public traffic, ports other than
 * envd's need the traffic token; envd's port of a secure sandbox needs its
 * access token, or a `/files` URL validly signed with it (envd would check
 * either itself, but envd is asleep).
 */
export function refuseWake(s: SandboxTokens, c: WakeCredentials): WakeRefusal | undefined {
  if (c.port !== ENVD_PORT) {
    if (s.trafficAccessToken && !tokenMatches(c.trafficAccessToken, s.trafficAccessToken))
      return 'traffic_token'
    return undefined
  }
  if (
    s.envdAccessToken &&
    !tokenMatches(c.envdAccessToken, s.envdAccessToken) &&
    !signedWith(c.signedFiles, s.envdAccessToken)
  )
    return 'envd_token'
  return undefined
}

/** A `/files` request whose signature (unexpired) was made with this envd token. */
function signedWith(req: WakeCredentials['signedFiles'], token: string): boolean {
  const signed = req && signedFilesRequest(req.method, req.url)
  return !!signed && verifyFileSignature({ token, ...signed }).ok
}
