import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { LAYERS } from './layer-store.js'

/**
 * What a build has made so far: the layer stack (top first, relative to the
 * templates directory) and the settings later steps and sandboxes run with.
 */
export const buildStateSchema = z.object({
  layers: z.array(z.string()).min(1),
  envVars: z.record(z.string(), z.string()),
  user: z.string(),
  workdir: z.string(),
})

export type BuildState = z.infer<typeof buildStateSchema>

export interface StepInput {
  type: string
  args: string[]
  filesHash?: string | undefined
}

/**
 * The cache key of a step: the state it starts from (its parent layers and
 * settings), the step itself and the digest of the files it copies. Equal
 * keys make equal results, so the result is reused.
 */
export function stepKey(parent: BuildState, step: StepInput): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        parent,
        step: { type: step.type, args: step.args, filesHash: step.filesHash ?? null },
      }),
    )
    .digest('hex')
}

function cacheDir(templatesDir: string): string {
  return join(templatesDir, LAYERS, '.cache')
}

/** The cached result of a step, if every layer it names is still there. */
export function cachedStep(templatesDir: string, key: string): BuildState | undefined {
  const path = join(cacheDir(templatesDir), `${key}.json`)
  if (!existsSync(path)) return undefined
  const parsed = buildStateSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
  if (!parsed.success) return undefined
  if (!parsed.data.layers.every((l) => existsSync(join(templatesDir, l)))) return undefined
  return parsed.data
}

export function recordStep(templatesDir: string, key: string, result: BuildState): void {
  mkdirSync(cacheDir(templatesDir), { recursive: true })
  const path = join(cacheDir(templatesDir), `${key}.json`)
  writeFileSync(`${path}.tmp`, JSON.stringify(result))
  renameSync(`${path}.tmp`, path)
}

/** Forgets cached steps whose results stand on a layer that is gone. */
export function pruneCache(templatesDir: string): void {
  const dir = cacheDir(templatesDir)
  if (!existsSync(dir)) return
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    const parsed = (() => {
      try {
        return buildStateSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
      } catch {
        return undefined
      }
    })()
    if (!parsed?.success || !parsed.data.layers.every((l) => existsSync(join(templatesDir, l))))
      rmSync(path, { force: true })
  }
}
