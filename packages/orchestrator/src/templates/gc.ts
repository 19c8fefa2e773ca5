import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { WarrenError } from '@warren/shared'
import { pruneCache } from './build-cache.js'
import { IMAGE_STORE, LAYERS, layerRel, removeLayer } from './layer-store.js'
import { templateMetadataSchema } from './metadata.js'
import { RECIPES } from './recipe.js'
import { templateDir } from './store.js'

/** Layers running builds stand on or made, by count: garbage collection leaves them alone. */
const pinned = new Map<string, number>()

export function pinLayers() {
  const mine: string[] = []
  return {
    add(layers: string[]) {
      for (const l of layers) {
        pinned.set(l, (pinned.get(l) ?? 0) + 1)
        mine.push(l)
      }
    },
    release() {
      for (const l of mine.splice(0)) {
        const n = (pinned.get(l) ?? 1) - 1
        if (n > 0) pinned.set(l, n)
        else pinned.delete(l)
      }
    },
  }
}

/** Pulls in progress: their layers appear before the build pins them. */
let imagePulls = 0

/** Keeps garbage collection away from the image store until released. */
export function holdImageStore(): () => void {
  imagePulls++
  let released = false
  return () => {
    if (!released) imagePulls--
    released = true
  }
}

/** Every layer some build of some template names (its template.json). */
function referencedLayers(templatesDir: string): Set<string> {
  const used = new Set<string>()
  for (const id of readdirSync(templatesDir)) {
    const builds = join(templatesDir, id, 'builds')
    if (id === LAYERS || id === IMAGE_STORE || !existsSync(builds)) continue
    for (const b of readdirSync(builds)) {
      const path = join(builds, b, 'template.json')
      if (!existsSync(path)) continue
      const meta = templateMetadataSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
      for (const l of meta.success ? (meta.data.layers ?? []) : []) used.add(l)
    }
  }
  return used
}

/**
 * Deletes a template: it can no longer be created from; the builds that
 * sandboxes (running or paused) still stand on stay until they no longer
 * do (the node then finishes with removeBuilds); then every layer no
 * remaining build names and no running build pinned is removed, and cached
 * steps that named one are forgotten. Returns how many layers went.
 */
export function deleteTemplate(
  templatesDir: string,
  templateId: string,
  buildsInUse: Set<string>,
): number {
  if (RECIPES[templateId])
    throw new WarrenError('invalid_argument', `template '${templateId}' is built in and stays`)
  const dir = templateDir(templatesDir, templateId)
  if (!existsSync(dir)) throw new WarrenError('not_found', `template '${templateId}' not found`)
  rmSync(join(dir, 'template.json'), { force: true })
  const unused = listDir(join(dir, 'builds')).filter((b) => !buildsInUse.has(`${templateId}/${b}`))
  return removeBuilds(templatesDir, templateId, unused)
}

/**
 * Removes builds of a deleted template (and its directory once it holds no
 * build), then every layer nothing names. The rest of a delete whose builds
 * sandboxes stood on, once they no longer do; nothing if the template has
 * been made again since (a build of the same recipe has the same id).
 */
export function removeBuilds(templatesDir: string, templateId: string, buildIds: string[]): number {
  const dir = templateDir(templatesDir, templateId)
  if (existsSync(join(dir, 'template.json'))) return 0
  const builds = join(dir, 'builds')
  const present = new Set(listDir(builds))
  for (const b of buildIds) {
    if (present.delete(b)) rmSync(join(builds, b), { recursive: true, force: true })
  }
  if (present.size === 0) rmSync(dir, { recursive: true, force: true })
  return collectLayers(templatesDir)
}

/** Removes the layers nothing names or pins, built and pulled; returns how many. */
export function collectLayers(templatesDir: string): number {
  const used = referencedLayers(templatesDir)
  const unused = (rel: string) => !used.has(rel) && !pinned.has(rel)
  let removed = 0
  const store = join(templatesDir, LAYERS)
  for (const name of existsSync(store) ? readdirSync(store) : []) {
    if (!/^[0-9a-f]{16}$/.test(name) || !unused(layerRel(name))) continue
    removeLayer(templatesDir, name)
    removed++
  }
  if (imagePulls === 0) removed += collectImageLayers(templatesDir, unused)
  pruneCache(templatesDir)
  return removed
}

/**
 * The image store's unpacked layers and sandbox layers
 * (`oci/{layers,sandbox}/<format>/<name>`) that no build names. Manifests
 * and configs (small, by digest) stay: a later pull of the image asks the
 * registry again only for the layers that went.
 */
function collectImageLayers(templatesDir: string, unused: (rel: string) => boolean): number {
  let removed = 0
  for (const kind of ['layers', 'sandbox']) {
    const kindDir = join(IMAGE_STORE, kind)
    for (const format of listDir(join(templatesDir, kindDir))) {
      for (const name of listDir(join(templatesDir, kindDir, format))) {
        const rel = join(kindDir, format, name)
        if (!unused(rel)) continue
        rmSync(join(templatesDir, rel), { recursive: true, force: true })
        removed++
      }
    }
  }
  return removed
}

function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : []
}
