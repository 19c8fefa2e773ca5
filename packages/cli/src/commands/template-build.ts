import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { type LogEntry, Template } from 'e2b'
import { type Connection, sdkOptions } from '../lib/connection.js'
import { type DockerfilePlan, planDockerfile, portReadyCmd } from '../lib/dockerfile.js'

export interface DockerfileBuildOptions {
  file?: string
  name?: string
  buildArg?: string[]
  force?: boolean
  json?: boolean
}

/**
 * The SDK's template builder for a Dockerfile plan. FROM names a Warren
 * template (base, or one of the team's) when one exists by that name, else
 * an OCI image (pulled by Warren itself).
 */
type Builder = ReturnType<ReturnType<typeof Template>['fromTemplate']>

async function builderFor(plan: DockerfilePlan, context: string, conn: Connection) {
  const fromTemplate =
    plan.from === 'base' || (await Template.exists(plan.from, sdkOptions(conn)).catch(() => false))
  const root = Template({ fileContextPath: context })
  let t: Builder = fromTemplate ? root.fromTemplate(plan.from) : root.fromImage(plan.from)
  for (const s of plan.steps) {
    if (s.type === 'RUN') t = t.runCmd(s.cmd, s.user ? { user: s.user } : {})
    else if (s.type === 'COPY')
      t = t.copy(s.src, s.dest, {
        ...(s.user ? { user: s.user } : {}),
        ...(s.mode ? { mode: Number.parseInt(s.mode, 8) } : {}),
      })
    else if (s.type === 'ENV') t = t.setEnvs(s.vars)
    else if (s.type === 'WORKDIR') t = t.setWorkdir(s.path)
    else t = t.setUser(s.user)
  }
  // Docker has no readiness of its own: the first EXPOSEd port listening,
  // else the start command counts as ready once started.
  const ready = plan.readyPort !== undefined ? portReadyCmd(plan.readyPort) : 'true'
  const template = plan.startCmd ? t.setStartCmd(plan.startCmd, ready) : t
  return { template, base: fromTemplate ? `template ${plan.from}` : `image ${plan.from}` }
}

/**
 * `warren template build [-f Dockerfile] [--name n] [context]`: the
 * Dockerfile's steps through E2B's build protocol (files uploaded by hash,
 * as the SDK does), with each step and its output shown as the build goes.
 */
export async function buildDockerfile(
  contextArg: string | undefined,
  opts: DockerfileBuildOptions,
  conn: Connection,
): Promise<void> {
  const context = resolve(contextArg ?? '.')
  const file = resolve(context, opts.file ?? 'Dockerfile')
  if (!existsSync(file)) throw new Error(`no Dockerfile at ${file}`)
  const buildArgs = Object.fromEntries(
    (opts.buildArg ?? []).map((a) => {
      const eq = a.indexOf('=')
      if (eq < 1) throw new Error(`--build-arg '${a}' is not NAME=value`)
      return [a.slice(0, eq), a.slice(eq + 1)]
    }),
  )
  const plan = planDockerfile(readFileSync(file, 'utf8'), buildArgs)
  const name = opts.name ?? defaultName(context)
  const { template, base } = await builderFor(plan, context, conn)
  const err = process.stderr
  err.write(`building ${name} from ${base}: ${plan.steps.length} steps\n`)
  for (const i of plan.ignored)
    err.write(`  note: ${i} has no meaning for a template and is ignored\n`)
  if (plan.startCmd) {
    const ready = plan.readyPort !== undefined ? `port ${plan.readyPort} listens` : 'it has started'
    err.write(`  start: ${plan.startCmd} (ready once ${ready})\n`)
  }
  const started = Date.now()
  const info = await Template.build(template, name, {
    ...sdkOptions(conn),
    ...(opts.force ? { skipCache: true } : {}),
    onBuildLogs: (l: LogEntry) => err.write(`${progressLine(l)}\n`),
  })
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ name, templateId: info.templateId, buildId: info.buildId })}\n`,
    )
  } else {
    process.stdout.write(`template ${name} (${info.templateId}) built in ${seconds} s\n`)
  }
}

/** Step headers stand out; a step's output is indented beneath them. */
function progressLine(l: LogEntry): string {
  const msg = l.message
  if (/^\[\d+\/\d+\]/.test(msg)) return `=> ${msg}`
  if (l.level === 'error') return `!! ${msg}`
  return `   ${msg}`
}

function defaultName(context: string): string {
  const base = context.split('/').filter(Boolean).at(-1) ?? 'template'
  return (
    base
      .toLowerCase()
      .replace(/[^a-z0-9_.-]/g, '-')
      .replace(/^[^a-z0-9]+/, '') || 'template'
  )
}
