import { WarrenError } from '@warren/shared'

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]'])

/**
 * A listener's URL as others reach it: the advertised host in place of the
 * listen address. A wildcard listen address names no host anyone can dial,
 * so it needs an advertised one.
 */
export function advertisedUrl(
  listening: string,
  listenHost: string,
  advertiseHost: string | undefined,
): string {
  const host = advertiseHost
  if (!host) {
    if (WILDCARDS.has(listenHost))
      throw new WarrenError(
        'invalid_argument',
        `the node listens on ${listenHost}: set WARREN_ADVERTISE_HOST to the address the API and edge proxies reach it at`,
      )
    return listening
  }
  const url = new URL(listening)
  url.hostname = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return url.origin
}
