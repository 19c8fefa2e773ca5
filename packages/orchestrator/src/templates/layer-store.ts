import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { lstat, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { getAttributeSync } from '@napi-rs/xattr'
import { run } from '../exec.js'

/**
 * Read-only layers shared by every template of the node, named by a digest
 * of their contents: `<templatesDir>/layers/<16 hex>`. The short name keeps
 * overlay's lowerdir option (one page for all layers) roomy. Beside each
 * layer, `<id>.json` records its full digest and when it was made.
 */
export const LAYERS = 'layers'

/**
 * Pulled images live in the OCI puller's own store beside them (root's
 * alone, like the rest of the templates directory):
 * `<templatesDir>/oci/{blobs,layers,sandbox,tmp}`. A template names their
 * layers relative to the templates directory too:
 * `oci/layers/v1-<uidBase>/<diff id>`, `oci/sandbox/v1-<uidBase>/<hash>`.
 */
export const IMAGE_STORE = 'oci'

/** A layer's path relative to the templates directory (what template.json lists). */
export function layerRel(id: string): string {
  return `${LAYERS}/${id}`
}

export function layerPath(templatesDir: string, id: string): string {
  return join(templatesDir, LAYERS, id)
}

/**
 * The digest of a directory tree as a layer: every entry's relative path,
 * type, mode, owner, size, device number (overlay whiteouts are 0/0
 * character devices), link target, opaque marker and file contents, in
 * name order. Modification times do not count: the same contents are the
 * same layer.
 */
export async function digestTree(root: string): Promise<string> {
  const hash = createHash('sha256')
  const visit = async (rel: string): Promise<void> => {
    const path = rel ? join(root, rel) : root
    const st = await lstat(path)
    const kind = st.isDirectory()
      ? 'd'
      : st.isFile()
        ? 'f'
        : st.isSymbolicLink()
          ? 'l'
          : st.isCharacterDevice()
            ? 'c'
            : st.isBlockDevice()
              ? 'b'
              : st.isFIFO()
                ? 'p'
                : 's'
    hash.update(`${rel}\0${kind}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.rdev}\0`)
    if (kind === 'l') hash.update(`${await readlink(path)}\0`)
    if (kind === 'f') {
      hash.update(`${st.size}\0`)
      for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
    }
    if (kind === 'd') {
      const opaque = getAttributeSync(path, 'trusted.overlay.opaque')
      if (opaque) hash.update(`opaque=${opaque.toString()}\0`)
      const names = (await readdir(path)).sort()
      for (const name of names) await visit(rel ? `${rel}/${name}` : name)
    }
  }
  await visit('')
  return hash.digest('hex')
}

/**
 * Makes a layer of a directory (a build sandbox's writable layer): copies it
 * into the store's staging area, then publishes it by its digest.
 */
export async function commitLayer(templatesDir: string, src: string): Promise<string> {
  return publishLayer(templatesDir, await stageLayer(templatesDir, src))
}

/**
 * Copies a directory into the store's staging area with owners, modes,
 * device nodes and overlay's xattrs kept (`cp -a`). What a snapshot does
 * while the sandbox is frozen: the digest is taken afterwards, of the copy.
 */
export async function stageLayer(templatesDir: string, src: string): Promise<string> {
  mkdirSync(join(templatesDir, LAYERS), { recursive: true })
  const tmp = join(templatesDir, LAYERS, `.tmp-${randomBytes(6).toString('hex')}`)
  try {
    await run('cp', ['-a', '--', src, tmp])
    return tmp
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true })
    throw err
  }
}

/**
 * Publishes a staged copy by its digest, with a rename so a half-copied
 * layer is never used; a layer with the same digest is reused (the copy goes).
 */
export async function publishLayer(templatesDir: string, staged: string): Promise<string> {
  try {
    const digest = await digestTree(staged)
    const id = digest.slice(0, 16)
    const target = layerPath(templatesDir, id)
    if (existsSync(target)) return id
    writeFileSync(
      `${target}.json`,
      `${JSON.stringify({ digest: `sha256:${digest}`, createdAt: new Date().toISOString() })}\n`,
    )
    renameSync(staged, target)
    return id
  } finally {
    rmSync(staged, { recursive: true, force: true })
  }
}

/** Removes a layer and its record; the caller knows nothing uses it. */
export function removeLayer(templatesDir: string, id: string): void {
  rmSync(layerPath(templatesDir, id), { recursive: true, force: true })
  rmSync(`${layerPath(templatesDir, id)}.json`, { force: true })
}
