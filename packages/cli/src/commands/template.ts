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
import { type ConnectionFlags, resolveConnection, withConnectionFlags } from '../lib/connection.js'
import { print } from '../lib/output.js'
import { buildDockerfile, type DockerfileBuildOptions } from './template-build.js'

export function registerTemplate(program: Command): void {
  const template = program.command('template').description('manage templates')
  withConnectionFlags(template.command('build'))
    .argument(
      '[context]',
      "a Dockerfile's build context (default .), or `base` for the built-in template",
    )
    .option('-f, --file <Dockerfile>', 'the Dockerfile, relative to the context', 'Dockerfile')
    .option(
      '-n, --name <name>',
      "the template's name (name or name:tag; default: the context's directory name)",
    )
    .option(
      '--build-arg <NAME=value>',
      "a value of the Dockerfile's ARGs (repeatable)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--force', 'rebuild every step (base: even if the cached build matches the recipe)')
    .option('--quiet-if-current', 'base: print nothing when the cached build is current')
    .description(
      'build a template from a Dockerfile through the API (or the built-in base, locally by recipe)',
    )
    .action(
      async (
        context: string | undefined,
        opts: DockerfileBuildOptions & ConnectionFlags & { quietIfCurrent?: boolean },
        cmd: Command,
      ) => {
        const dockerfile = cmd.getOptionValueSource('file') === 'cli' || !!opts.name
        if (context && RECIPES[context] && !dockerfile) {
          await ensureTemplate(context, opts)
          return
        }
        await buildDockerfile(context, opts, resolveConnection(opts))
      },
    )

  withConnectionFlags(template.command('list'))
    .alias('ls')
    .description("list the built-in and the team's templates")
    .action(async (opts: ConnectionFlags & { json?: boolean }) => {
      const conn = resolveConnection(opts)
      const res = await fetch(`${conn.apiUrl}/templates`, { headers: { 'x-api-key': conn.apiKey } })
      const body = (await res.json()) as Array<Record<string, unknown>> & { message?: string }
      if (!res.ok) throw new Error(body.message ?? `list failed (${res.status})`)
      print(
        body.map((t) => ({
          templateId: t.templateID,
          names: (t.names as string[]).join(', '),
          status: t.buildStatus,
          buildId: t.buildID,
          cpu: t.cpuCount,
          memoryMB: t.memoryMB,
          updatedAt: t.updatedAt,
        })),
        opts.json,
      )
    })

  withConnectionFlags(template.command('delete'))
    .alias('rm')
    .argument('<template>', 'template id or name')
    .description('delete a template and the layers no other template uses')
    .action(async (ref: string, opts: ConnectionFlags) => {
      const conn = resolveConnection(opts)
      const res = await fetch(`${conn.apiUrl}/templates/${encodeURIComponent(ref)}`, {
        method: 'DELETE',
        headers: { 'x-api-key': conn.apiKey },
      })
      if (res.status !== 204) {
        const body = (await res.json().catch(() => ({}))) as { message?: string }
        throw new Error(body.message ?? `delete failed (${res.status})`)
      }
      process.stderr.write(`template ${ref} deleted\n`)
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
