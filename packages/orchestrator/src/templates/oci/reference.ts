import { isIP } from 'node:net'
import { WarrenError } from '@warren/shared'

/** An image reference, parsed the way `docker pull` reads it. */
export interface ImageReference {
  /** Where the registry is, as named (`docker.io`, `ghcr.io`, `localhost:5000`). */
  registry: string
  /** The repository path, `library/` added for Docker Hub's official images. */
  repository: string
  tag?: string
  digest?: string
}

export const DOCKER_HUB = 'docker.io'
/** Docker Hub's registry API lives on another host than its name. */
const DOCKER_HUB_API = 'registry-1.docker.io'

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^[\w][\w.-]{0,127}$/
export const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/
const HOST =
  /^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::\d{1,5})?$/

/**
 * `python:3.12` → docker.io/library/python:3.12; `user/repo:tag`,
 * `host:port/repo:tag`, `repo@sha256:…`. The first path component names a
 * registry when it has a dot or a port, or is `localhost`, as in Docker.
 * A reference with both a tag and a digest is pulled by its digest.
 */
export function parseReference(ref: string): ImageReference {
  const bad = (why: string) =>
    new WarrenError('invalid_argument', `invalid image reference '${ref}': ${why}`)
  if (ref.length === 0 || ref.length > 512 || /\s/.test(ref)) throw bad('empty, too long or blank')
  let rest = ref
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) throw bad('the digest must be sha256:<64 hex> or sha512:<128 hex>')
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw bad(`invalid tag '${tag}'`)
  }
  let registry = DOCKER_HUB
  const slash = rest.indexOf('/')
  const first = slash >= 0 ? rest.slice(0, slash) : ''
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!HOST.test(first)) throw bad(`invalid registry '${first}'`)
    registry = first.toLowerCase()
    rest = rest.slice(slash + 1)
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB
  if (registry === DOCKER_HUB && !rest.includes('/')) rest = `library/${rest}`
  const parts = rest.split('/')
  if (!parts.every((p) => COMPONENT.test(p))) {
    throw bad('repository names are lowercase letters, digits and separators')
  }
  return {
    registry,
    repository: rest,
    ...(digest ? {} : { tag: tag ?? 'latest' }),
    ...(digest ? { digest } : {}),
  }
}

/** The canonical form, e.g. `docker.io/library/python:3.12`. */
export function formatReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.digest ? `@${r.digest}` : `:${r.tag}`}`
}

export interface RegistryEndpoint {
  /** The host[:port] the API is served on. */
  host: string
  /** `https://host` or, for loopback and listed insecure registries, `http://host`. */
  baseUrl: string
}

/**
 * Plain HTTP only where nothing leaves the machine (loopback) or where the
 * operator said so; everything else is HTTPS, so registry credentials and
 * tokens never cross a network in clear.
 */
export function registryEndpoint(
  registry: string,
  insecure: readonly string[] = [],
): RegistryEndpoint {
  const host = registry === DOCKER_HUB ? DOCKER_HUB_API : registry
  const plain = isLoopbackHost(host) || insecure.includes(registry) || insecure.includes(host)
  return { host, baseUrl: `${plain ? 'http' : 'https'}://${host}` }
}

/** `localhost`, 127.0.0.0/8 and ::1, with or without a port. */
export function isLoopbackHost(hostPort: string): boolean {
  const host = hostPort.startsWith('[')
    ? hostPort.slice(1, hostPort.indexOf(']'))
    : hostPort.replace(/:\d+$/, '')
  if (host.toLowerCase() === 'localhost') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1'
  return false
}
