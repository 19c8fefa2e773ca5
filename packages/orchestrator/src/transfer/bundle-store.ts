import { createHash, randomBytes } from 'node:crypto'
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs'
import { open, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import {
  BUNDLE_KINDS,
  type BundleFile,
  type BundleKind,
  type BundleManifest,
  bundleManifestSchema,
  isSha256,
  WarrenError,
} from '@warren/shared'

/**
 * A directory of bundles (see @warren/shared's bundle.ts):
 * `<root>/blobs/<sha256>` holds each file once, whoever names it;
 * `<root>/<kind>/<id>.json` the manifest naming a bundle's files. Every
 * write goes to a temporary name in the same directory and is renamed into
 * place, so a reader (another node over a shared filesystem, a peer
 * downloading) sees a file whole or not at all; a blob is renamed only once
 * its sha256 and size are what the manifest says.
 *
 * The same layout serves a node's own bundles (`<data>/bundles`, what peers
 * download from it) and the shared snapshot store (WARREN_SNAPSHOT_STORE).
 */
export class BundleStore {
  constructor(readonly root: string) {}

  blobPath(sha256: string): string {
    return join(this.root, 'blobs', sha256)
  }

  has(file: BundleFile): boolean {
    return existsSync(this.blobPath(file.sha256))
  }

  /**
   * Stores a stream as a blob, hashing it on the way; returns its name.
   * With `expected`, a stream whose size or sha256 differ is refused and
   * nothing is stored.
   */
  async put(stream: Readable, name: string, expected?: BundleFile): Promise<BundleFile> {
    const dir = join(this.root, 'blobs')
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`)
    const hash = createHash('sha256')
    let size = 0
    const out = await open(tmp, 'wx', 0o600)
    try {
      for await (const chunk of stream) {
        const b = chunk as Buffer
        size += b.length
        if (expected && size > expected.size)
          throw corrupt(name, 'is longer than its manifest says')
        hash.update(b)
        await out.write(b)
      }
      await out.sync()
      await out.close()
      const file: BundleFile = { name, sha256: hash.digest('hex'), size }
      if (expected && (file.size !== expected.size || file.sha256 !== expected.sha256))
        throw corrupt(name, `arrived as sha256 ${file.sha256} (${size} bytes)`)
      const target = this.blobPath(file.sha256)
      if (existsSync(target)) {
        // Already there: keep the first (same contents), mark it recent for the sweep.
        const now = new Date()
        await utimes(target, now, now)
        rmSync(tmp, { force: true })
      } else renameSync(tmp, target)
      return file
    } catch (err) {
      await out.close().catch(() => {})
      rmSync(tmp, { force: true })
      throw err
    }
  }

  /** A blob's contents, checked again against its manifest entry as it is read. */
  open(file: BundleFile): Readable {
    return createReadStream(this.blobPath(file.sha256))
  }

  async writeManifest(m: BundleManifest): Promise<void> {
    const path = this.manifestPath(m.kind, m.id)
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 })
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
    await writeFile(tmp, JSON.stringify(m), { mode: 0o600 })
    renameSync(tmp, path)
  }

  readManifest(kind: BundleKind, id: string): BundleManifest | undefined {
    const path = this.manifestPath(kind, id)
    if (!existsSync(path)) return undefined
    const parsed = bundleManifestSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
    if (!parsed.success) throw corrupt(`${kind} ${id}`, 'has an invalid manifest')
    return parsed.data
  }

  /**
   * Removes a bundle's manifest, then every blob no manifest names that is
   * older than `graceMs` (its own and earlier leftovers). The grace covers a
   * writer that has put its blobs but not yet its manifest (another node on
   * a shared store); 0 for a store one process writes, between its own steps.
   */
  removeBundle(m: BundleManifest, graceMs = 10 * 60_000): void {
    rmSync(this.manifestPath(m.kind, m.id), { force: true })
    const named = this.namedBlobs()
    const dir = join(this.root, 'blobs')
    const candidates = graceMs === 0 ? m.files.map((f) => f.sha256) : safeList(dir)
    const before = Date.now() - graceMs
    for (const name of candidates) {
      if (named.has(name) || !isSha256(name)) continue
      const path = join(dir, name)
      try {
        if (graceMs === 0 || statSync(path).mtimeMs < before) rmSync(path, { force: true })
      } catch {}
    }
  }

  /** Removes the bundles of `kind` made more than `ageMs` ago, with the blobs only they named. */
  expire(kind: BundleKind, ageMs: number): void {
    const before = Date.now() - ageMs
    for (const m of this.manifests(kind))
      if (Date.parse(m.createdAt) < before) this.removeBundle(m, 0)
  }

  private manifests(kind: BundleKind): BundleManifest[] {
    const found: BundleManifest[] = []
    const visit = (dir: string) => {
      for (const entry of safeList(dir)) {
        const path = join(dir, entry)
        if (entry.endsWith('.json')) {
          const parsed = bundleManifestSchema.safeParse(readJson(path))
          if (parsed.success) found.push(parsed.data)
        } else if (!entry.includes('.')) visit(path)
      }
    }
    visit(join(this.root, kind))
    return found
  }

  /** Every blob some manifest of the store names. */
  private namedBlobs(): Set<string> {
    const named = new Set<string>()
    for (const kind of BUNDLE_KINDS)
      for (const m of this.manifests(kind)) for (const f of m.files) named.add(f.sha256)
    return named
  }

  private manifestPath(kind: BundleKind, id: string): string {
    // Template ids are `templateId/buildId`: one directory per template.
    return join(this.root, kind, `${id}.json`)
  }
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    return undefined
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

export function corrupt(what: string, detail: string): WarrenError {
  return new WarrenError('data_loss', `bundle file ${what} ${detail}; refused`)
}
