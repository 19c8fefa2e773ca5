import type { IncomingMessage } from 'node:http'
import {
  ENVD_PORT,
  firstHeader,
  type ProxyError,
  refuseWake,
  signedFilesRequest,
  TRAFFIC_TOKEN_HEADER,
  tokenMatches,
  type WakeCredentials,
} from '@warren/shared'
import type { Route } from '@warren/shared/gen/warren/api/v1/proxy_pb'

/** The request's own credentials, as the control plane judges them before a resume. */
export function wakeCredentials(req: IncomingMessage, port: number): WakeCredentials {
  const envd = firstHeader(req, 'x-access-token')
  const traffic = firstHeader(req, TRAFFIC_TOKEN_HEADER)
  const signed = signedFilesRequest(req.method, req.url)
  return {
    port,
    ...(envd !== undefined ? { envdAccessToken: envd } : {}),
    ...(traffic !== undefined ? { trafficAccessToken: traffic } : {}),
    ...(signed ? { signedFiles: { method: req.method ?? '', url: req.url ?? '' } } : {}),
  }
}

/**
 * Traffic rules that do not depend on the sandbox being up: without public
 * traffic, ports other than envd's need the traffic access token (envd has
 * its own token check).
 */
export function refuseTraffic(
  req: IncomingMessage,
  route: Route,
  port: number,
): ProxyError | undefined {
  if (
    port !== ENVD_PORT &&
    route.trafficAccessToken &&
    !tokenMatches(firstHeader(req, TRAFFIC_TOKEN_HEADER), route.trafficAccessToken)
  )
    return trafficTokenRefused(route.sandboxId, port)
  return undefined
}

/**
 * Whether a request may wake a paused sandbox: it must be one the running
 * sandbox would accept (see `refuseWake`). Judged here from the catalog's
 * copy, so refused traffic costs the control plane nothing; the control
 * plane judges the same credentials again before it resumes.
 */
export function refuseResume(
  creds: WakeCredentials,
  route: Route,
  port: number,
): ProxyError | undefined {
  const why = refuseWake(route, creds)
  if (why === 'traffic_token') return trafficTokenRefused(route.sandboxId, port)
  if (why === 'envd_token') return envdTokenRefused(route.sandboxId, port)
  return undefined
}

export function trafficTokenRefused(sandboxId: string, port: number): ProxyError {
  return {
    status: 403,
    sandboxId,
    port,
    message: `missing or invalid ${TRAFFIC_TOKEN_HEADER}: this sandbox does not accept public traffic`,
  }
}

export function envdTokenRefused(sandboxId: string, port: number): ProxyError {
  return {
    status: 403,
    sandboxId,
    port,
    message: 'the sandbox is paused; resuming it through envd needs its X-Access-Token',
  }
}
