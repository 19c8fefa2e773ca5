import type { IncomingMessage } from 'node:http'
import {
  ENVD_PORT,
  firstHeader,
  type ProxyError,
  signedFilesRequest,
  tokenMatches,
  verifyFileSignature,
} from '@warren/shared'
import type { Route } from '@warren/shared/gen/warren/api/v1/proxy_pb'

export const TRAFFIC_TOKEN_HEADER = 'e2b-traffic-access-token'

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
  ) {
    return {
      status: 403,
      sandboxId: route.sandboxId,
      port,
      message: `missing or invalid ${TRAFFIC_TOKEN_HEADER}: this sandbox does not accept public traffic`,
    }
  }
  return undefined
}

/**
 * Whether a request may wake a paused sandbox: it must be one the running
 * sandbox would accept. Traffic to envd of a secure sandbox needs its
 * X-Access-Token, or must be a `/files` URL validly signed with it (envd
 * would check either, but envd is asleep).
 */
export function refuseResume(
  req: IncomingMessage,
  route: Route,
  port: number,
): ProxyError | undefined {
  const traffic = refuseTraffic(req, route, port)
  if (traffic) return traffic
  if (
    port === ENVD_PORT &&
    route.envdAccessToken &&
    !tokenMatches(firstHeader(req, 'x-access-token'), route.envdAccessToken) &&
    !signedWith(req, route.envdAccessToken)
  ) {
    return {
      status: 403,
      sandboxId: route.sandboxId,
      port,
      message: 'the sandbox is paused; resuming it through envd needs its X-Access-Token',
    }
  }
  return undefined
}

/** A `/files` request whose signature (unexpired) was made with this envd token. */
function signedWith(req: IncomingMessage, token: string): boolean {
  const signed = signedFilesRequest(req.method, req.url)
  return !!signed && verifyFileSignature({ token, ...signed }).ok
}
