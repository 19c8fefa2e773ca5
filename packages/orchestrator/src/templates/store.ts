import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { type TemplateMetadata, templateMetadataSchema } from './metadata.js'

/**
 * On-disk layout of templates:
 *   <templatesDir>/<templateId>/template.json            the current build
 *   <templatesDir>/<templateId>/builds/<buildId>/rootfs  one build's files
 */
/**
 * Template layers are owned by the sandboxes' mapped uid (so that root in a
 * sandbox owns what root owned in the template) and shared by all of them:
 * their directory is root's alone, so a process that escaped a sandbox as
 * that uid cannot reach them to change what every other sandbox runs.
 * Sandboxes see the layers only through their overlay, which the kernel
 * reads with the mounter's (root's) credentials.
 */
export function protectTemplates(templatesDir: string): void {
  mkdirSync(templatesDir, { recursive: true, mode: 0o700 })
  chmodSync(templatesDir, 0o700)
}

export function templateDir(templatesDir: string, templateId: string): string {
  return join(templatesDir, templateId)
}

export function buildDir(templatesDir: string, templateId: string, buildId: string): string {
  return join(templatesDir, templateId, 'builds', buildId)
}

export function rootfsDir(templatesDir: string, meta: TemplateMetadata): string {
  return join(buildDir(templatesDir, meta.templateId, meta.buildId), 'rootfs')
}

/** A template's read-only layers, top first, relative to the templates directory. */
export function layerDirs(meta: TemplateMetadata): string[] {
  return meta.layers ?? [join(meta.templateId, 'builds', meta.buildId, 'rootfs')]
}

export function readCurrent(
  templatesDir: string,
  templateId: string,
): TemplateMetadata | undefined {
  const path = join(templateDir(templatesDir, templateId), 'template.json')
  if (!existsSync(path)) return undefined
  return templateMetadataSchema.parse(JSON.parse(readFileSync(path, 'utf8')))
}

export function writeCurrent(templatesDir: string, meta: TemplateMetadata): void {
  const path = join(templateDir(templatesDir, meta.templateId), 'template.json')
  writeFileSync(`${path}.tmp`, `${JSON.stringify(meta, null, 2)}\n`)
  renameSync(`${path}.tmp`, path)
}

/** A build's own record first (sandboxes resume on it), then the template's current one. */
export function publishTemplate(templatesDir: string, meta: TemplateMetadata): void {
  const dir = buildDir(templatesDir, meta.templateId, meta.buildId)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'template.json'), `${JSON.stringify(meta, null, 2)}\n`)
  writeCurrent(templatesDir, meta)
}

export function listTemplateIds(templatesDir: string): string[] {
  if (!existsSync(templatesDir)) return []
  return readdirSync(templatesDir).filter((id) =>
    existsSync(join(templatesDir, id, 'template.json')),
  )
}
