import { existsSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline, Transform } from 'node:stream'
import { WarrenError } from '@warren/shared'
import { type RegistryClient, registryError } from './client.js'
import { Decompressor } from './decompress.js'
import { DigestVerifier } from './digest.js'
import { DiskBudget, type DiskLimits } from './disk-limits.js'
import { layerRel, makeTempDir, publishDir, shared } from './layout.js'
import type { Descriptor } from './manifest.js'
import { type UnpackStats, unpackLayer } from './unpack.js'

/** Layer media types Warren can apply; anything else (artifacts, Windows layers) is refused. */
const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
])

export interface LayerProgress {
  digest: string
  /** Compressed bytes received so far, and the blob's size. */
  bytes: number
  size: number
  /** True when the layer was already in the store (nothing downloaded). */
  cached: boolean
  done: boolean
  /** What unpacking skipped or could not keep, once a download is done. */
  stats?: UnpackStats
}

export interface LayerRequest {
  client: RegistryClient
  into: string
  uidBase: number
  desc: Descriptor
  diffId: string
  /** What unpacking may write; none by default. */
  limits?: DiskLimits
  onProgress?: (p: LayerProgress) => void
}

type Report = (bytes: number, cached: boolean, done: boolean, stats?: UnpackStats) => void

/** Makes sure the layer is unpacked in the store; returns its path relative to `into`. */
export async function ensureLayer(req: LayerRequest): Promise<string> {
  const { desc } = req
  if (desc.urls?.length || desc.mediaType.includes('foreign')) {
    throw new WarrenError('invalid_argument', `layer ${desc.digest} is a foreign layer (Windows?)`)
  }
  if (!LAYER_TYPES.has(desc.mediaType)) {
    throw new WarrenError(
      'invalid_argument',
      `layer ${desc.digest} has media type '${desc.mediaType}'`,
    )
  }
  const rel = layerRel(req.uidBase, req.diffId)
  const target = join(req.into, rel)
  const report: Report = (bytes, cached, done, stats) =>
    req.onProgress?.({
      digest: desc.digest,
      bytes,
      size: desc.size,
      cached,
      done,
      ...(stats ? { stats } : {}),
    })
  if (existsSync(target)) {
    report(desc.size, true, true)
    return rel
  }
  await shared(target, () => download(req, target, report))
  return rel
}

/**
 * Streams the blob through two digest checks (the compressed blob, then the
 * uncompressed tar against the config's diff id) into a private directory,
 * and renames it into place only when both held. On any failure the work
 * directory is removed: nothing partial is ever published.
 */
async function download(req: LayerRequest, target: string, report: Report): Promise<void> {
  const { desc } = req
  const tmp = await makeTempDir(req.into)
  try {
    const root = join(tmp, 'layer')
    await mkdir(root, { mode: 0o755 })
    const res = await req.client.request(`blobs/${desc.digest}`)
    if (res.status !== 200) throw await registryError(res, `layer ${desc.digest}`)
    let bytes = 0
    let last = 0
    const progress = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length
        if (Date.now() - last > 250) {
          last = Date.now()
          report(bytes, false, false)
        }
        cb(null, chunk)
      },
    })
    const tarStream = pipeline(
      res.body,
      new DigestVerifier(`layer ${desc.digest}`, desc.digest, desc.size),
      progress,
      new Decompressor(),
      new DigestVerifier(`the uncompressed layer ${desc.digest}`, req.diffId),
      () => {
        // Errors reach unpackLayer through the last stream.
      },
    )
    const stats = await unpackLayer(tarStream, root, {
      uidBase: req.uidBase,
      budget: new DiskBudget(req.limits),
    }).catch((err: unknown) => {
      if (err instanceof WarrenError && err.code === 'limit_exceeded')
        throw new WarrenError(err.code, `layer ${desc.digest}: ${err.message}`)
      throw err
    })
    await publishDir(root, target)
    report(bytes, false, true, stats)
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}
