import { mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { newSandboxId, WarrenError } from '@warren/shared'
import type { NodeContext } from '../context.js'
import { run } from '../exec.js'
import { mountsUnder, unmount } from '../runtime/overlay.js'
import { layerRel, publishLayer, stageLayer } from '../templates/layer-store.js'
import type { TemplateMetadata } from '../templates/metadata.js'
import { buildDir, layerDirs, publishTemplate } from '../templates/store.js'
import { checkpointRunning, MEMORY_IMAGE_DIR, writeEnvdToken } from './checkpoint.js'
import { syncLayer } from './pause.js'
import { type SandboxRecord, sandboxPaths } from './record.js'

/**
 * A snapshot of a sandbox as a template: its writable layer, copied, on top
 * of its template's layers, with its template's settings and its own size.
 * A running runc sandbox is frozen only while its layer is copied
 * (consistent files, no half-written state), then runs on; its processes
 * are not copied: a sandbox created from the snapshot boots fresh on its
 * files. A running gVisor sandbox is checkpointed instead (its memory image
 * goes into the snapshot's build directory, `memoryImage`), its layer
 * copied while it is stopped, then restored: a gVisor sandbox created from
 * the snapshot continues its processes (see checkpoint.ts).
 */
export async function snapshotSandbox(
  ctx: NodeContext,
  record: SandboxRecord,
  templateId: string,
  envdAccessToken?: string,
): Promise<TemplateMetadata> {
  const source = ctx.templates.build(record.templateId, record.buildId)
  const buildId = newSandboxId().slice(0, 16)
  let withMemory =
    ctx.cfg.gvisorMemorySnapshots === 'on' &&
    record.state === 'running' &&
    record.isolation === 'gvisor'
  const dir = buildDir(ctx.templatesDir, templateId, buildId)
  let layer: string
  try {
    let staged: string | undefined
    if (withMemory) {
      try {
        staged = await checkpointLayer(ctx, record, join(dir, MEMORY_IMAGE_DIR), envdAccessToken)
      } catch (err) {
        // Sockets gVisor cannot save (the sandbox untouched): its files, as runc's.
        if (!(err instanceof WarrenError && err.code === 'conflict')) throw err
        ctx.log.info({ sandboxId: record.sandboxId, why: err.message }, 'snapshot of files only')
        rmSync(join(dir, MEMORY_IMAGE_DIR), { recursive: true, force: true })
        withMemory = false
      }
    }
    staged ??= await copyLayer(ctx, record)
    layer = await publishLayer(ctx.templatesDir, staged)
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const { memoryImage: _m, ...inherited } = source
  const meta: TemplateMetadata = {
    ...inherited,
    templateId,
    buildId,
    builtAt: new Date().toISOString(),
    cpuCount: record.cpuCount,
    memoryMB: record.memoryMb,
    diskSizeMB: record.diskSizeMb,
    layers: [layerRel(layer), ...layerDirs(source)],
    ...(withMemory ? { memoryImage: MEMORY_IMAGE_DIR } : {}),
  }
  publishTemplate(ctx.templatesDir, meta)
  return meta
}

/** The layer of a running gVisor sandbox, copied while it is checkpointed into `imageDir`. */
async function checkpointLayer(
  ctx: NodeContext,
  record: SandboxRecord,
  imageDir: string,
  envdAccessToken: string | undefined,
): Promise<string> {
  mkdirSync(imageDir, { recursive: true, mode: 0o700 })
  if (envdAccessToken) writeEnvdToken(imageDir, envdAccessToken)
  const paths = sandboxPaths(ctx.cfg.dataDir, record.sandboxId)
  return checkpointRunning(ctx, record, imageDir, async () => {
    await syncLayer(ctx, record.sandboxId)
    return stageLayer(ctx.templatesDir, paths.upper)
  })
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
