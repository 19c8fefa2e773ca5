import { hostname } from 'node:os'
import { join } from 'node:path'
import { createSecureContext, type SecureContext } from 'node:tls'
import { WarrenError } from '@warren/shared'
import {
  generateKeyPair,
  loadOrCreateCa,
  permitsDnsName,
  privateKeyToPem,
} from '@warren/shared/pki'
import { LRUCache } from 'lru-cache'
import { writeCaBundle } from './ca-bundle.js'
import type { EdgeCertificates } from './certificates.js'

/** Names with a certificate at hand; past it the least recently used is dropped (and reissued if asked again). */
const MAX_CACHED_NAMES = 1024
/** A leaf lives a week; the cache drops it after a day, long before it expires. */
const LEAF_DAYS = 7
const CACHE_TTL_MS = 86_400_000
const LOOPBACK_RANGES = ['127.0.0.0/8', '::1/128']

/**
 * The proxy's own CA (`<dataDir>/pki/proxy-ca`, made on first start, root
 * only) and a certificate per requested name, signed on demand: Node's
 * checkServerIdentity refuses a `*.localhost` wildcard, a leaf naming the
 * host exactly is accepted everywhere. The CA is name-constrained to the
 * domain, `localhost` and the loopback addresses, so trusting it (as
 * NODE_EXTRA_CA_CERTS) vouches for nothing else even if its key leaks.
 * All leaves share one key pair, made at start and kept in memory only.
 */
export async function warrenCaCertificates(
  dataDir: string,
  domain: string,
): Promise<EdgeCertificates> {
  const dir = join(dataDir, 'pki', 'proxy-ca')
  const { ca, certPath } = await loadOrCreateCa(dir, {
    commonName: `Warren proxy CA (${hostname()})`.slice(0, 64),
    permitted: { dns: [...new Set([domain, 'localhost'])], ipRanges: LOOPBACK_RANGES },
  })
  if (!permitsDnsName(ca.certificate, `x.${domain}`)) {
    throw new WarrenError(
      'invalid_argument',
      `the proxy CA in ${dir} was made for another domain than ${domain}: remove that directory to make a new one (and trust the new ${certPath})`,
    )
  }
  const keys = await generateKeyPair()
  const key = await privateKeyToPem(keys.privateKey)
  const issue = (names: { dns: string[]; ip?: string[] }) =>
    ca.issue({
      commonName: names.dns[0]!,
      dnsNames: names.dns,
      ipAddresses: names.ip ?? [],
      usages: ['server'],
      validityDays: LEAF_DAYS,
      publicKey: keys.publicKey,
    })
  const cache = new LRUCache<string, SecureContext>({
    max: MAX_CACHED_NAMES,
    ttl: CACHE_TTL_MS,
    // Concurrent handshakes for a new name share one signature; a failure is not cached.
    fetchMethod: async (name) =>
      createSecureContext({ cert: (await issue({ dns: [name] })).certPem, key }),
  })
  // Without SNI (an address, or `localhost` in the URL): the domain, localhost and the loopbacks.
  const fallback = {
    cert: (await issue({ dns: [...new Set([domain, 'localhost'])], ip: ['127.0.0.1', '::1'] }))
      .certPem,
    key,
  }
  const fallbackContext = createSecureContext(fallback)
  const { bundlePath } = writeCaBundle(join(dataDir, 'pki'), ca.certPem)
  return {
    fallback,
    contextFor: async (name) =>
      name === domain || name === 'localhost' ? fallbackContext : (await cache.fetch(name))!,
    caCertPath: certPath,
    caBundlePath: bundlePath,
  }
}
