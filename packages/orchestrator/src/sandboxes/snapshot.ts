import { mkdtempSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { newSandboxId } from '@warren/shared'
import type { NodeContext } from '../context.js'
import { run } from '../exec.js'
import { mountsUnder, unmount } from '../runtime/overlay.js'
import { layerRel, publishLayer, stageLayer } from '../templates/layer-store.js'
import type { TemplateMetadata } from '../templates/metadata.js'
import { layerDirs, publishTemplate } from '../templates/store.js'
import { syncLayer } from './pause.js'
import { type SandboxRecord, sandboxPaths } from './record.js'

/**
 * A snapshot of a sandbox as a template: its writable layer, copied, on top
 * of its template's layers, with its template's settings and its own size.
 * A running sandbox is frozen only while its layer is copied (consistent
 * files, no half-written state), then runs on. Processes are not copied: a
 * sandbox created from the snapshot boots fresh on its files.
 */
export async function snapshotSandbox(
  ctx: NodeContext,
  record: SandboxRecord,
  templateId: string,
): Promise<TemplateMetadata> {
  const source = ctx.templates.build(record.templateId, record.buildId)
  const staged = await copyLayer(ctx, record)
  const layer = await publishLayer(ctx.templatesDir, staged)
  const meta: TemplateMetadata = {
    ...source,
    templateId,
    buildId: newSandboxId().slice(0, 16),
    builtAt: new Date().toISOString(),
    cpuCount: record.cpuCount,
    memoryMB: record.memoryMb,
    diskSizeMB: record.diskSizeMb,
    layers: [layerRel(layer), ...layerDirs(source)],
  }
  publishTemplate(ctx.templatesDir, meta)
  return meta
}

async function copyLayer(ctx: NodeContext, record: SandboxRecord): Promise<string> {
  const paths = sandboxPaths(ctx.cfg.dataDir, record.sandboxId)
  if (record.state === 'running') {
    const id = record.containerId
    const runtime = ctx.runtimes.get(record.isolation)
    await runtime.pause(id)
    try {
      await syncLayer(ctx, record.sandboxId)
      return await stageLayer(ctx.templatesDir, paths.upper)
    } finally {
      await runtime.resume(id)
    }
  }
  if (mountsUnder(paths.disk).includes(paths.disk)) {
    // Paused with its processes: frozen already, its disk mounted.
    return stageLayer(ctx.templatesDir, paths.upper)
  }
  // A files-only snapshot keeps its disk unmounted: read it from the image.
  const mnt = mkdtempSync(join(ctx.cfg.dataDir, '.snapshot-'))
  try {
    await run('mount', ['-t', 'ext4', '-o', 'loop,ro,noload', paths.image, mnt])
    try {
      return await stageLayer(ctx.templatesDir, join(mnt, 'upper'))
    } finally {
      await unmount(mnt)
    }
  } finally {
    rmdirSync(mnt)
  }
}
