import { sandboxAddressOf } from '@warren/shared'

/** The host part of the sandbox domain (`localhost:3002` → `localhost`). */
export function domainHost(domain: string): string {
  return domain.replace(/:\d+$/, '').toLowerCase()
}

/**
 * Whether the proxy presents a certificate for a TLS server name: the
 * domain itself, or a sandbox host `{port}-{id}.{domain}`. Anything else is
 * refused in the handshake: the proxy vouches for no other name.
 */
export function isServedName(servername: string, domain: string): boolean {
  const name = servername.toLowerCase()
  if (name === domain) return true
  return (
    name.endsWith(`.${domain}`) &&
    name.indexOf('.') === name.length - domain.length - 1 &&
    sandboxAddressOf({ host: name }) !== undefined
  )
}
