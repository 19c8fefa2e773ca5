import {
  type BuildProgress,
  buildTemplate,
  envdSourceDir,
  envdVersionAt,
  RECIPES,
  templatesDirOf,
} from '@warren/orchestrator'
import { loadOrchestratorConfig, WarrenError } from '@warren/shared'
import cliProgress from 'cli-progress'
import type { Command } from 'commander'

export function registerTemplate(program: Command): void {
  const template = program.command('template').description('manage templates')
  template
    .command('build')
    .argument('<template>', 'template to build (base)')
    .option('--force', 'rebuild even if the cached build matches the recipe')
    .option('--quiet-if-current', 'print nothing when the cached build is current')
    .description('build a template once per recipe, cached under the data directory')
    .action(async (id: string, opts: { force?: boolean; quietIfCurrent?: boolean }) => {
      await ensureTemplate(id, opts)
    })
}

/** Builds (or finds current) a template, with a progress bar on a terminal. */
export async function ensureTemplate(
  id: string,
  opts: { force?: boolean; quietIfCurrent?: boolean } = {},
) {
  const recipe = RECIPES[id]
  if (!recipe)
    throw new WarrenError(
      'not_found',
      `no recipe for template '${id}' (known: ${Object.keys(RECIPES).join(', ')})`,
    )
  const cfg = loadOrchestratorConfig()
  const templatesDir = templatesDirOf(cfg)
  const progress = progressReporter(id)
  const result = await buildTemplate(recipe, {
    templatesDir,
    uidBase: cfg.uidBase,
    envdVersion: envdVersionAt(envdSourceDir(cfg)) ?? 'unknown',
    ...(process.env.WARREN_DEBIAN_MIRROR ? { mirror: process.env.WARREN_DEBIAN_MIRROR } : {}),
    ...(opts.force ? { force: true } : {}),
    onProgress: progress.update,
  })
  progress.stop()
  if (result.built) {
    process.stderr.write(`template ${id}: built ${result.metadata.buildId} in ${templatesDir}\n`)
  } else if (!opts.quietIfCurrent) {
    process.stderr.write(`template ${id}: build ${result.metadata.buildId} is current\n`)
  }
  return result.metadata
}

function progressReporter(id: string) {
  const tty = process.stderr.isTTY
  let bar: cliProgress.SingleBar | undefined
  let lastStage = ''
  return {
    update(p: BuildProgress) {
      if (p.stage === 'done') return
      if (!tty) {
        // Logs get one line per stage, not one per package.
        if (p.stage !== lastStage) process.stderr.write(`template ${id}: ${p.stage}...\n`)
        lastStage = p.stage
        return
      }
      if (!bar) {
        bar = new cliProgress.SingleBar(
          {
            format: `template ${id} [{bar}] {stage} {value}/{total} {detail}`,
            clearOnComplete: true,
            stream: process.stderr,
          },
          cliProgress.Presets.shades_classic,
        )
        bar.start(1, 0, { stage: p.stage, detail: '' })
      }
      bar.setTotal(Math.max(p.total || p.done, 1))
      bar.update(p.done, { stage: p.stage, detail: (p.detail ?? '').slice(0, 30) })
    },
    stop() {
      bar?.stop()
    },
  }
}
