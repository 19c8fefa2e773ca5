import { WarrenError } from '@warren/shared'

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]'])

/**
 * A listener's URL as others reach it: the advertised host in place of the
 * listen address. A wildcard listen address names no host anyone can dial:
 * without an advertised one it stands for this machine's loopback (enough
 * for the all-in-one, whose API and edge share the process).
 */
export function advertisedUrl(
  listening: string,
  listenHost: string,
  advertiseHost: string | undefined,
): string {
  const host = advertiseHost ?? (WILDCARDS.has(listenHost) ? loopbackOf(listenHost) : undefined)
  if (!host) return listening
  const url = new URL(listening)
  url.hostname = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return url.origin
}

function loopbackOf(wildcard: string): string {
  return wildcard === '0.0.0.0' ? '127.0.0.1' : '::1'
}

/** A node that registers with a remote API must say where it is reached. */
export function checkAdvertisable(listenHost: string, advertiseHost: string | undefined): void {
  if (WILDCARDS.has(listenHost) && !advertiseHost)
    throw new WarrenError(
      'invalid_argument',
      `the node listens on ${listenHost}: set WARREN_ADVERTISE_HOST to the address the API and edge proxies reach it at`,
    )
}
