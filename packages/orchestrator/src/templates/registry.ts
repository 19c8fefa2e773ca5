import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { WarrenError } from '@warren/shared'
import { type TemplateMetadata, templateMetadataSchema } from './metadata.js'
import { buildDir, listTemplateIds, readCurrent, templateDir } from './store.js'

/**
 * The node's view of built templates. A template built after the node
 * started (or rebuilt) is picked up on its next lookup: the cache is keyed by
 * the template.json modification time.
 */
export class TemplateRegistry {
  private readonly cache = new Map<string, { mtimeMs: number; meta: TemplateMetadata }>()

  constructor(private readonly templatesDir: string) {}

  get(templateId: string): TemplateMetadata {
    const path = join(templateDir(this.templatesDir, templateId), 'template.json')
    let mtimeMs: number
    try {
      mtimeMs = statSync(path).mtimeMs
    } catch {
      throw new WarrenError('not_found', `template '${templateId}' not found`)
    }
    const cached = this.cache.get(templateId)
    if (cached && cached.mtimeMs === mtimeMs) return cached.meta
    const meta = readCurrent(this.templatesDir, templateId)
    if (!meta) throw new WarrenError('not_found', `template '${templateId}' not found`)
    this.cache.set(templateId, { mtimeMs, meta })
    return meta
  }

  /**
   * A specific build: a paused sandbox's writable layer only makes sense on
   * top of the build it was created from, even after a rebuild.
   */
  build(templateId: string, buildId: string): TemplateMetadata {
    const path = join(buildDir(this.templatesDir, templateId, buildId), 'template.json')
    try {
      return templateMetadataSchema.parse(JSON.parse(readFileSync(path, 'utf8')))
    } catch {
      throw new WarrenError('not_found', `build ${buildId} of template '${templateId}' is gone`)
    }
  }

  list(): TemplateMetadata[] {
    return listTemplateIds(this.templatesDir).map((id) => this.get(id))
  }
}
