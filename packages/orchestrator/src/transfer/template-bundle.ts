import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { type BundleFile, type BundleManifest, WarrenError } from '@warren/shared'
import { z } from 'zod'
import { digestTree, LAYERS } from '../templates/layer-store.js'
import { type TemplateMetadata, templateMetadataSchema } from '../templates/metadata.js'
import { buildDir, layerDirs, publishTemplate, readCurrent } from '../templates/store.js'
import type { BundleStore } from './bundle-store.js'
import { packDir, unpackInto } from './tar.js'

/**
 * A layer's path relative to the templates directory, as template.json
 * lists it: a content-addressed layer, a build's own root filesystem, or a
 * pulled image's layer. Anything else (`..`, absolute) is refused.
 */
const layerPathSchema = z
  .string()
  .regex(
    /^(layers\/[0-9a-f]{16}|[A-Za-z0-9_-]{1,64}\/builds\/[A-Za-z0-9_-]{1,64}\/rootfs|oci\/(layers|sandbox)\/v1-\d+\/[A-Za-z0-9:_.-]{1,160})$/,
  )

/** What a template bundle's metadata holds: the build and, per layer, its tree digest if known. */
const templateBundleSchema = z.object({
  template: templateMetadataSchema,
  layers: z.array(z.object({ path: layerPathSchema, digest: z.string().optional() })),
})

/**
 * A template build as a bundle in `store`: its metadata, and one tar per
 * layer the asker lacks (`need`; the base template's root filesystem is
 * hundreds of MB and usually everywhere already).
 */
export async function packTemplate(
  templatesDir: string,
  meta: TemplateMetadata,
  need: Set<string>,
  store: BundleStore,
): Promise<BundleManifest> {
  const layers = layerDirs(meta).map((path) => ({
    path,
    digest: recordedDigest(templatesDir, path),
  }))
  const files: BundleFile[] = []
  for (const [i, layer] of layers.entries()) {
    if (!need.has(layer.path)) continue
    files.push(
      await packDir(join(templatesDir, layer.path), (tar) => store.put(tar, `layer-${i}.tar`)),
    )
  }
  return {
    version: 1,
    kind: 'template',
    id: `${meta.templateId}/${meta.buildId}`,
    createdAt: new Date().toISOString(),
    metadata: { template: meta, layers },
    files,
  }
}

/** A content-addressed layer's full digest, from its record (`layers/<id>.json`). */
function recordedDigest(templatesDir: string, path: string): string | undefined {
  if (!path.startsWith(`${LAYERS}/`)) return undefined
  try {
    const rec = JSON.parse(readFileSync(join(templatesDir, `${path}.json`), 'utf8')) as {
      digest?: string
    }
    return rec.digest?.replace(/^sha256:/, '')
  } catch {
    return undefined
  }
}

/**
 * Installs a template build from a bundle whose files are in `store`
 * (checked against their hashes): each layer this node lacks is unpacked
 * into a staging directory beside its place, a content-addressed one
 * checked again by its tree digest (its name), then renamed into place;
 * the build's record comes last, so a half-installed template is never
 * offered. Returns the build's metadata.
 */
export async function installTemplate(
  templatesDir: string,
  manifest: BundleManifest,
  store: BundleStore,
): Promise<TemplateMetadata> {
  const parsed = templateBundleSchema.safeParse(manifest.metadata)
  if (!parsed.success)
    throw new WarrenError('data_loss', `template bundle ${manifest.id} is malformed`)
  const { template, layers } = parsed.data
  if (`${template.templateId}/${template.buildId}` !== manifest.id)
    throw new WarrenError('data_loss', `template bundle ${manifest.id} names another build`)
  for (const [i, layer] of layers.entries()) {
    const target = join(templatesDir, layer.path)
    if (existsSync(target)) continue
    const file = manifest.files.find((f) => f.name === `layer-${i}.tar`)
    if (!file)
      throw new WarrenError('data_loss', `template bundle ${manifest.id} lacks ${layer.path}`)
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 })
    const staged = join(dirname(target), `.tmp-${randomBytes(6).toString('hex')}`)
    try {
      mkdirSync(staged, { mode: 0o755 })
      await unpackInto(store.open(file), staged)
      if (layer.path.startsWith(`${LAYERS}/`)) {
        const digest = await digestTree(staged)
        if (
          `${LAYERS}/${digest.slice(0, 16)}` !== layer.path ||
          (layer.digest && layer.digest !== digest)
        )
          throw new WarrenError('data_loss', `layer ${layer.path} arrived as ${digest}; refused`)
        writeFileSync(
          `${target}.json`,
          `${JSON.stringify({ digest: `sha256:${digest}`, createdAt: new Date().toISOString() })}\n`,
        )
      }
      renameSync(staged, target)
    } finally {
      rmSync(staged, { recursive: true, force: true })
    }
  }
  const dir = buildDir(templatesDir, template.templateId, template.buildId)
  if (readCurrent(templatesDir, template.templateId)) {
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'template.json'), `${JSON.stringify(template, null, 2)}\n`)
  } else publishTemplate(templatesDir, template)
  return template
}
