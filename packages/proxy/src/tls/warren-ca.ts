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
/** The cache's key for the leaf of clients that name no sandbox host. */
const FALLBACK = ''

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
  const issue = async (name: string) => {
    const certPem = (
      await ca.issue({
        ...(name === FALLBACK
          ? // No name (an address in the URL), `localhost` or the domain itself.
            { dnsNames: [...new Set([domain, 'localhost'])], ipAddresses: ['127.0.0.1', '::1'] }
          : { dnsNames: [name] }),
        commonName: name === FALLBACK ? domain : name,
        usages: ['server'],
        validityDays: LEAF_DAYS,
        publicKey: keys.publicKey,
      })
    ).certPem
    return { certPem, context: createSecureContext({ cert: certPem, key }) }
  }
  const cache = new LRUCache<string, { certPem: string; context: SecureContext }>({
    max: MAX_CACHED_NAMES,
    ttl: CACHE_TTL_MS,
    // Concurrent handshakes for a new name share one signature; a failure is not cached.
    fetchMethod: issue,
  })
  const leaf = async (name: string) => (await cache.fetch(name))!
  const { bundlePath } = writeCaBundle(join(dataDir, 'pki'), ca.certPem)
  return {
    fallback: async () => ({ cert: (await leaf(FALLBACK)).certPem, key }),
    contextFor: async (name) =>
      (await leaf(name === domain || name === 'localhost' ? FALLBACK : name)).context,
    caCertPath: certPath,
    caBundlePath: bundlePath,
  }
}
