import { setTimeout as sleep } from 'node:timers/promises'
import { WarrenError } from '@warren/shared'
import { type EnvdTarget, runCommand, startCommand } from './envd-client.js'
import type { TemplateMetadata } from './metadata.js'

/** How long a ready command may keep failing before the sandbox counts as broken. */
export const READY_TIMEOUT_MS = 60_000

/**
 * A built template's start command, started through envd once envd is up
 * (as E2B does), then its ready command polled until it exits 0. Runs as
 * the template's user, in its working directory, with its environment
 * (envd's own, set by /init).
 */
export async function startTemplateCommands(
  target: EnvdTarget,
  template: TemplateMetadata,
  opts: { timeoutMs?: number; log?: (line: string) => void } = {},
): Promise<void> {
  const base = { user: template.defaultUser, cwd: template.defaultWorkdir }
  if (template.startCmd) await startCommand(target, { ...base, cmd: template.startCmd })
  if (!template.readyCmd) return
  const deadline = Date.now() + (opts.timeoutMs ?? READY_TIMEOUT_MS)
  let last = ''
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
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
        `ready command '${template.readyCmd}' did not succeed within ${Math.round((opts.timeoutMs ?? READY_TIMEOUT_MS) / 1000)} s${last ? `: ${last}` : ''}`,
      )
    }
    await sleep(delay)
  }
}
