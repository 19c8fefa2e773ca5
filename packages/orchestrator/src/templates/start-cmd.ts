import { setTimeout as sleep } from 'node:timers/promises'
import { WarrenError } from '@warren/shared'
import { type EnvdTarget, runCommand, type StartedCommand, startCommand } from './envd-client.js'
import type { TemplateMetadata } from './metadata.js'

/** How long a ready command may keep failing before the sandbox counts as broken. */
export const READY_TIMEOUT_MS = 60_000

/**
 * A built template's start command, started through envd once envd is up
 * (as E2B does), then its ready command polled until it exits 0. Runs as
 * the template's user, in its working directory, with its environment
 * (envd's own, set by /init). A start command that fails before its ready
 * command succeeds fails the start with its exit code and output, rather
 * than waiting out the ready timeout or looking ready (`true`) with nothing
 * running.
 */
export async function startTemplateCommands(
  target: EnvdTarget,
  template: TemplateMetadata,
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  const base = { user: template.defaultUser, cwd: template.defaultWorkdir }
  const started = template.startCmd
    ? await startCommand(target, { ...base, cmd: template.startCmd })
    : undefined
  try {
    if (template.readyCmd) await pollReady(target, template, base, started, opts.timeoutMs)
    failIfDied(template, started)
  } finally {
    started?.detach()
  }
}

function failIfDied(template: TemplateMetadata, started: StartedCommand | undefined): void {
  const exit = started?.exit
  if (!exit || exit.code === 0) return
  const how = exit.code === -1 ? 'was killed' : `exited with code ${exit.code}`
  throw new WarrenError(
    'internal',
    `start command '${template.startCmd}' ${how}${exit.output ? `: ${exit.output.slice(-500)}` : ''}`,
  )
}

async function pollReady(
  target: EnvdTarget,
  template: TemplateMetadata,
  base: { user: string; cwd: string },
  started: StartedCommand | undefined,
  timeoutMs = READY_TIMEOUT_MS,
): Promise<void> {
  if (!template.readyCmd) return
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    failIfDied(template, started)
    let output = ''
    const code = await runCommand(
      target,
      { ...base, cmd: template.readyCmd },
      {
        onOutput: (t) => {
          output += t
        },
        signal: AbortSignal.timeout(10_000),
      },
    ).catch((err: Error) => {
      output = err.message
      return -1
    })
    if (code === 0) return
    last = output.trim().slice(-500)
    if (Date.now() > deadline) {
      throw new WarrenError(
        'internal',
        `ready command '${template.readyCmd}' did not succeed within ${Math.round(timeoutMs / 1000)} s${last ? `: ${last}` : ''}`,
      )
    }
    await sleep(delay)
  }
}
