import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { WarrenError } from '@warren/shared'
import type { NodeContext } from '../context.js'
import { type BuildState, cachedStep, recordStep, type StepInput, stepKey } from './build-cache.js'
import { inBuildSandbox } from './build-sandbox.js'
import { pullBase } from './from-image.js'
import { pinLayers } from './gc.js'
import type { TemplateMetadata } from './metadata.js'
import { startTemplateCommands } from './start-cmd.js'
import { applyStep, type StepContext, stateTemplate } from './steps.js'
import { layerDirs, publishTemplate } from './store.js'

export interface TemplateBuildSpec {
  templateId: string
  buildId: string
  from: { template: string } | { image: string; auth?: { username: string; password: string } }
  steps: Array<StepInput & { force: boolean }>
  startCmd?: string | undefined
  readyCmd?: string | undefined
  force: boolean
  cpuCount: number
  memoryMb: number
  diskSizeMb: number
  filesUrls: Record<string, string>
}

export type LogLevel = 'info' | 'warn' | 'error'
export type BuildLog = (level: LogLevel, message: string, step: string) => void

/** A build that failed at a step ("base", "1"…, "finalize"), with why. */
export class BuildFailure extends Error {
  constructor(
    message: string,
    readonly step: string,
  ) {
    super(message)
  }
}

/**
 * Docker's own limit on an image's layers; overlayfs stacks up to 500, and
 * the lowerdir option names each by a short link (see sandboxes/lowers.ts).
 */
const MAX_LAYERS = 128

/**
 * Builds a template: the base's layers, then each step in order — taken
 * from the cache when its key (parent state, step, files digest) was built
 * before and nothing before it was forced — then the start and ready
 * commands checked in a sandbox of the result, then the template published
 * (its build's template.json, then the current one). The layers it stands
 * on are pinned against garbage collection while it runs.
 */
export async function runBuild(
  ctx: NodeContext,
  spec: TemplateBuildSpec,
  log: BuildLog,
  signal: AbortSignal,
): Promise<{ metadata: TemplateMetadata; cached: number; built: number }> {
  const work = join(ctx.cfg.dataDir, 'builds', spec.buildId)
  mkdirSync(work, { recursive: true })
  const pins = pinLayers()
  try {
    const { base, state: baseState } = await resolveBase(ctx, spec, log, pins.add).catch((err) => {
      throw new BuildFailure((err as Error).message, 'base')
    })
    pins.add(baseState.layers)
    if (baseState.layers.length > MAX_LAYERS)
      throw new BuildFailure(`the base has more than ${MAX_LAYERS} layers`, 'base')
    let state = baseState
    let forced = spec.force
    let cached = 0
    let built = 0
    const n = spec.steps.length
    for (const [i, step] of spec.steps.entries()) {
      signal.throwIfAborted()
      const label = String(i + 1)
      const title = describe(step)
      forced ||= step.force
      const key = stepKey(state, step)
      const hit = forced ? undefined : cachedStep(ctx.templatesDir, key)
      if (hit) {
        log('info', `[${i + 1}/${n}] CACHED ${title}`, label)
        state = hit
        pins.add(state.layers)
        cached++
        continue
      }
      log('info', `[${i + 1}/${n}] ${title}`, label)
      const sc = stepContext(ctx, spec, base, work, signal, (level, m) => log(level, m, label))
      try {
        state = await applyStep(sc, state, step)
      } catch (err) {
        if (signal.aborted) throw err
        throw new BuildFailure(`${title}: ${(err as Error).message}`, label)
      }
      pins.add(state.layers)
      if (state.layers.length > MAX_LAYERS)
        throw new BuildFailure(`more than ${MAX_LAYERS} layers`, label)
      recordStep(ctx.templatesDir, key, state)
      built++
    }
    const metadata = finalMetadata(spec, base, state)
    if (metadata.startCmd || metadata.readyCmd) {
      log('info', 'checking the start and ready commands', 'finalize')
      await inBuildSandbox(
        ctx,
        {
          template: metadata,
          cpuCount: spec.cpuCount,
          memoryMb: spec.memoryMb,
          diskSizeMb: spec.diskSizeMb,
        },
        (sb) => startTemplateCommands(sb.target, metadata),
      ).catch((err) => {
        throw new BuildFailure((err as Error).message, 'finalize')
      })
    }
    publishTemplate(ctx.templatesDir, metadata)
    log('info', `template ${spec.templateId} build ${spec.buildId} is ready`, 'finalize')
    return { metadata, cached, built }
  } finally {
    pins.release()
    rmSync(work, { recursive: true, force: true })
  }
}

async function resolveBase(
  ctx: NodeContext,
  spec: TemplateBuildSpec,
  log: BuildLog,
  pin: (layers: string[]) => void,
): Promise<{ base: TemplateMetadata; state: BuildState }> {
  if ('image' in spec.from) {
    const { image, auth } = spec.from
    return pullBase(ctx, image, auth, (level, m) => log(level, m, 'base'), pin)
  }
  const base = ctx.templates.get(spec.from.template)
  return {
    base,
    state: {
      layers: layerDirs(base),
      envVars: base.envVars ?? {},
      user: base.defaultUser,
      workdir: base.defaultWorkdir,
    },
  }
}

function stepContext(
  ctx: NodeContext,
  spec: TemplateBuildSpec,
  base: TemplateMetadata,
  work: string,
  signal: AbortSignal,
  log: StepContext['log'],
): StepContext {
  return {
    ctx,
    base,
    cpuCount: spec.cpuCount,
    memoryMb: spec.memoryMb,
    diskSizeMb: spec.diskSizeMb,
    work,
    filesUrls: spec.filesUrls,
    log,
    signal,
  }
}

function finalMetadata(
  spec: TemplateBuildSpec,
  base: TemplateMetadata,
  state: BuildState,
): TemplateMetadata {
  return {
    ...stateTemplate(base, state),
    templateId: spec.templateId,
    buildId: spec.buildId,
    builtAt: new Date().toISOString(),
    cpuCount: spec.cpuCount,
    memoryMB: spec.memoryMb,
    diskSizeMB: spec.diskSizeMb,
    ...(spec.startCmd ? { startCmd: spec.startCmd } : {}),
    ...(spec.readyCmd ? { readyCmd: spec.readyCmd } : {}),
  }
}

function describe(step: StepInput): string {
  const args = step.type === 'ENV' ? pairs(step.args) : step.args.filter(Boolean).join(' ')
  const text = `${step.type} ${args}`.trim()
  return text.length > 200 ? `${text.slice(0, 197)}...` : text
}

function pairs(args: string[]): string {
  const out: string[] = []
  for (let i = 0; i < args.length; i += 2) out.push(`${args[i]}=${args[i + 1] ?? ''}`)
  return out.join(' ')
}

export function asBuildFailure(err: unknown): BuildFailure {
  if (err instanceof BuildFailure) return err
  if (err instanceof WarrenError && err.code !== 'internal')
    return new BuildFailure(err.message, '')
  return new BuildFailure(`build failed: ${(err as Error).message}`, '')
}
