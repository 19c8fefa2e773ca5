import { fileSignature, type SignedFilesRequest, tokenMatches } from '@warren/shared'
import { LRUCache } from 'lru-cache'
import type { Catalog } from '../catalog/route-catalog.js'

const MAX_FOUND = 10_000
const MAX_MISSES = 10_000
/** A found signature without its own expiry is searched again after this long. */
const FOUND_TTL_MS = 60 * 60_000

/**
 * Which sandbox a header-less signed `/files` URL belongs to. The URL names
 * no sandbox, but its signature is sha256 over the envd token of exactly one
 * secure sandbox, and the catalog holds those tokens: a signature is matched
 * against them once, and the answer is kept (bounded, LRU). A signature that
 * matches nothing is remembered too (bounded), together with the catalog's
 * token generation: it is searched again only after a sandbox with a new
 * token arrived, so repeating a random signature costs no more searches.
 * Expiry is not judged here (envd does that); a signature kept with an
 * expiration time is dropped once it has passed.
 */
export class SignatureRoutes {
  private readonly found: LRUCache<string, string>
  private readonly misses = new LRUCache<string, number>({ max: MAX_MISSES })
  /** Searches made, for tests and metrics. */
  searches = 0

  constructor(
    private readonly catalog: Catalog,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.found = new LRUCache<string, string>({
      max: MAX_FOUND,
      // An entry lives from when it was found: an expiring signature's until
      // its expiry (measured on the same clock), others an hour.
      ttl: FOUND_TTL_MS,
      perf: { now: nowMs },
      ttlResolution: 0,
    })
  }

  /** The sandbox id the signature was made for, or undefined. */
  find(req: SignedFilesRequest): string | undefined {
    const key = req.signature
    const known = this.found.get(key)
    if (known !== undefined) return known
    const generation = this.catalog.tokenGeneration
    if (this.misses.get(key) === generation) return undefined
    this.searches++
    const expiration = req.expiration === undefined ? undefined : Number(req.expiration)
    for (const route of this.catalog.withEnvdTokens()) {
      const sig = fileSignature({
        path: req.path,
        operation: req.operation,
        user: req.user,
        token: route.envdAccessToken,
        expiration,
      })
      if (!tokenMatches(req.signature, sig)) continue
      const untilExpiry = expiration === undefined ? undefined : expiration * 1000 - this.nowMs()
      if (untilExpiry === undefined) this.found.set(key, route.sandboxId)
      else if (untilExpiry > 0) this.found.set(key, route.sandboxId, { ttl: untilExpiry })
      this.misses.delete(key)
      return route.sandboxId
    }
    this.misses.set(key, generation)
    return undefined
  }
}
