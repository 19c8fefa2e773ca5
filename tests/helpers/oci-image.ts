// A small OCI/Docker image writer for tests: tar layers built from entry
// lists or from a directory (gzip, zstd or plain), image configs, manifests
// and multi-platform indexes, in OCI or Docker media types. What it makes is
// pushed to a real registry by tests/helpers/registry.ts.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, lstatSync, readdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { type PassThrough, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip, gzipSync } from 'node:zlib'
import tar from 'tar-stream'

export type Format = 'oci' | 'docker'
export type Compression = 'gzip' | 'zstd' | 'none'

/** A blob to push: in memory, or in a file for big layers. */
export interface Blob {
  mediaType: string
  digest: string
  size: number
  data?: Buffer
  path?: string
}

export interface Layer extends Blob {
  diffId: string
}

export interface Image {
  layers: Layer[]
  config: Blob
  manifest: Blob
  platform: { os: string; architecture: string; variant?: string }
}

/** A tar entry: a tar-stream header plus its content. */
export type Entry = Parameters<tar.Pack['entry']>[0] & { body?: string | Buffer }

export const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`

const LAYER_TYPES: Record<Format, Record<Compression, string>> = {
  oci: {
    gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
    zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
    none: 'application/vnd.oci.image.layer.v1.tar',
  },
  docker: {
    gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
    none: 'application/vnd.docker.image.rootfs.diff.tar',
  },
}

export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack()
  for (const { body, ...h } of entries) pack.entry({ mtime: new Date(0), ...h }, body ?? '')
  pack.finalize()
  const chunks: Buffer[] = []
  for await (const c of pack) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

function compress(data: Buffer, c: Compression): Buffer {
  if (c === 'gzip') return gzipSync(data)
  // Node 20's zlib has no zstd: Debian's zstd tool makes the frames.
  if (c === 'zstd') return execFileSync('zstd', ['-q', '-c', '-3'], { input: data })
  return data
}

export async function makeLayer(
  entries: Entry[],
  compression: Compression = 'gzip',
  format: Format = 'oci',
): Promise<Layer> {
  const raw = await tarOf(entries)
  const data = compress(raw, compression)
  return {
    mediaType: LAYER_TYPES[format][compression],
    digest: sha256(data),
    size: data.length,
    data,
    diffId: sha256(raw),
  }
}

/**
 * A gzip layer of a whole directory tree, written to `file`: for images made
 * from a template's root filesystem. Owners are shifted down by `uidShift`
 * (a template's files belong to the sandbox uid range on the host).
 */
export async function layerFromDir(dir: string, file: string, uidShift = 0): Promise<Layer> {
  const pack = tar.pack()
  const rawHash = createHash('sha256')
  const gzHash = createHash('sha256')
  let size = 0
  const tap = (h: ReturnType<typeof createHash>, count = false) =>
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        h.update(chunk)
        if (count) size += chunk.length
        cb(null, chunk)
      },
    })
  const writing = pipeline(
    pack as unknown as PassThrough,
    tap(rawHash),
    createGzip({ level: 1 }),
    tap(gzHash, true),
    createWriteStream(file),
  )
  const inodes = new Map<string, string>()
  const walk = async (rel: string): Promise<void> => {
    const abs = join(dir, rel)
    const st = lstatSync(abs)
    const base = {
      name: rel || './',
      mode: st.mode & 0o7777,
      uid: Math.max(st.uid - uidShift, 0),
      gid: Math.max(st.gid - uidShift, 0),
      mtime: st.mtime,
    }
    const add = (h: Entry, body?: Buffer | string) =>
      new Promise<void>((resolve, reject) =>
        pack.entry(h, body ?? '', (err) => (err ? reject(err) : resolve())),
      )
    if (st.isDirectory()) {
      await add({ ...base, type: 'directory' })
      for (const name of readdirSync(abs).sort()) await walk(rel ? `${rel}/${name}` : name)
    } else if (st.isSymbolicLink()) {
      await add({ ...base, type: 'symlink', linkname: readlinkSync(abs) })
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`
      const first = st.nlink > 1 ? inodes.get(key) : undefined
      if (first) return add({ ...base, type: 'link', linkname: first })
      inodes.set(key, rel)
      const sink = pack.entry({ ...base, type: 'file', size: st.size })
      await pipeline(createReadStream(abs), sink as unknown as PassThrough)
    }
  }
  await walk('')
  pack.finalize()
  await writing
  return {
    mediaType: LAYER_TYPES.oci.gzip,
    digest: `sha256:${gzHash.digest('hex')}`,
    size,
    path: file,
    diffId: `sha256:${rawHash.digest('hex')}`,
  }
}

function json(mediaType: string, doc: object): Blob {
  const data = Buffer.from(JSON.stringify(doc))
  return { mediaType, digest: sha256(data), size: data.length, data }
}

const descriptor = (b: Blob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size })

export function makeImage(opts: {
  layers: Layer[]
  config?: {
    Env?: string[]
    Cmd?: string[]
    Entrypoint?: string[]
    User?: string
    WorkingDir?: string
  }
  platform?: Image['platform']
  format?: Format
}): Image {
  const format = opts.format ?? 'oci'
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' }
  const config = json(
    format === 'oci'
      ? 'application/vnd.oci.image.config.v1+json'
      : 'application/vnd.docker.container.image.v1+json',
    {
      ...platform,
      config: opts.config ?? {},
      rootfs: { type: 'layers', diff_ids: opts.layers.map((l) => l.diffId) },
    },
  )
  const mediaType =
    format === 'oci'
      ? 'application/vnd.oci.image.manifest.v1+json'
      : 'application/vnd.docker.distribution.manifest.v2+json'
  const manifest = json(mediaType, {
    schemaVersion: 2,
    mediaType,
    config: descriptor(config),
    layers: opts.layers.map(descriptor),
  })
  return { layers: opts.layers, config, manifest, platform }
}

export function makeIndex(images: Image[], format: Format = 'oci'): Blob {
  const mediaType =
    format === 'oci'
      ? 'application/vnd.oci.image.index.v1+json'
      : 'application/vnd.docker.distribution.manifest.list.v2+json'
  return json(mediaType, {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((i) => ({ ...descriptor(i.manifest), platform: i.platform })),
  })
}

/** The OCI architecture of this machine, and one it is not. */
export const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64'
export const OTHER_ARCH = HOST_ARCH === 'arm64' ? 'amd64' : 'arm64'
