import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Readable } from 'node:stream'
import {
  type BundleFile,
  type BundleKind,
  type BundleManifest,
  bundleManifestSchema,
  CLUSTER_SECRET_HEADER,
  WarrenError,
} from '@warren/shared'
import type { BundleStore } from './bundle-store.js'

/** Where a node gets a bundle it lacks: the shared snapshot store, or a peer node. */
export interface BundleSource {
  /** For logs and errors: "the snapshot store", "node n2". */
  readonly name: string
  /**
   * The bundle's manifest; undefined when the source does not have it.
   * `need`: for a template, the layers to include (none when unset).
   */
  manifest(kind: BundleKind, id: string, need?: string[]): Promise<BundleManifest | undefined>
  open(file: BundleFile): Promise<Readable>
}

export function storeSource(store: BundleStore, name: string): BundleSource {
  return {
    name,
    manifest: async (kind, id) => store.readManifest(kind, id),
    open: async (file) => {
      if (!store.has(file)) throw new WarrenError('not_found', `${name} lacks ${file.sha256}`)
      return store.open(file)
    },
  }
}

/** How a node calls a peer's RPC port (its bundle routes): the cluster secret, the cluster CA. */
export interface PeerAuth {
  secret: string
  ca: string | undefined
}

/**
 * A peer node's bundles over its RPC port (`/bundles/…`, see http.ts),
 * authenticated by the cluster secret and, over https, verified against
 * the cluster CA. What arrives is checked by the caller against the
 * manifest's hashes, never trusted as sent.
 */
export function peerSource(rpcUrl: string, auth: PeerAuth, name = rpcUrl): BundleSource {
  const get = async (path: string): Promise<IncomingMessage> => {
    const url = new URL(path, rpcUrl)
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          headers: { [CLUSTER_SECRET_HEADER]: auth.secret },
          ...(url.protocol === 'https:' && auth.ca ? { ca: auth.ca } : {}),
          timeout: 30_000,
        },
        resolve,
      )
      req.once('timeout', () => req.destroy(new Error(`${name} did not answer`)))
      req.once('error', (err) =>
        reject(
          new WarrenError('unavailable', `${name} unreachable: ${err.message}`, { cause: err }),
        ),
      )
      req.end()
    })
  }
  return {
    name,
    async manifest(kind, id, need) {
      const query = need?.length ? `?need=${encodeURIComponent(need.join(','))}` : ''
      const res = await get(`/bundles/${kind}/${id}${query}`)
      const body = await text(res)
      if (res.statusCode === 404) return undefined
      if (res.statusCode !== 200) throw answered(name, res.statusCode, body)
      const parsed = bundleManifestSchema.safeParse(JSON.parse(body))
      // A template asked by its id alone answers with its current build's id.
      const sameId = parsed.data?.id === id || parsed.data?.id.startsWith(`${id}/`)
      if (!parsed.success || parsed.data.kind !== kind || !sameId)
        throw new WarrenError('data_loss', `${name} sent an invalid manifest for ${kind} ${id}`)
      return parsed.data
    },
    async open(file) {
      const res = await get(`/bundles/blobs/${file.sha256}`)
      if (res.statusCode !== 200) throw answered(name, res.statusCode, await text(res))
      return res
    },
  }
}

function answered(name: string, status: number | undefined, body: string): WarrenError {
  let message = body.slice(0, 300)
  try {
    message = (JSON.parse(body) as { message?: string }).message ?? message
  } catch {}
  return new WarrenError(
    status === 404 ? 'not_found' : 'unavailable',
    `${name} answered ${status}: ${message}`,
  )
}

async function text(res: IncomingMessage): Promise<string> {
  let s = ''
  res.setEncoding('utf8')
  for await (const chunk of res) s += chunk
  return s
}

/**
 * Brings a bundle into `into`: its manifest from the first source that has
 * it, then every file `into` lacks, each checked against the manifest's
 * sha256 and size before it becomes visible (BundleStore.put). A source
 * that is unreachable or lacks it is skipped for the next; one that sends
 * data not matching its hashes ends the fetch (data_loss).
 */
export async function fetchBundle(
  sources: BundleSource[],
  kind: BundleKind,
  id: string,
  into: BundleStore,
  need?: string[],
): Promise<{ manifest: BundleManifest; from: string }> {
  const failures: WarrenError[] = []
  for (const source of sources) {
    try {
      const manifest = await source.manifest(kind, id, need)
      if (!manifest) continue
      for (const file of manifest.files)
        if (!into.has(file)) await into.put(await source.open(file), file.name, file)
      return { manifest, from: source.name }
    } catch (err) {
      // Data that does not match its hash stops here: a corrupted store is
      // the operator's to see, not to be papered over by another source.
      if (err instanceof WarrenError && err.code === 'data_loss') throw err
      failures.push(
        err instanceof WarrenError
          ? err
          : new WarrenError('unavailable', `${source.name}: ${(err as Error).message}`),
      )
    }
  }
  if (failures[0]) throw failures[0]
  // Not "not found": the thing exists, this node cannot reach a copy of it.
  throw new WarrenError(
    'unavailable',
    `no copy of ${kind} ${id} reachable (${sources.map((s) => s.name).join(', ') || 'no shared store, origin down'})`,
  )
}
