import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { WarrenError } from '@warren/shared'
import { CommandError, run, runLogged } from '../exec.js'
import type { ContainerState, OciRuntime } from './oci-runtime.js'

export type { ContainerState, ContainerStatus } from './oci-runtime.js'

/** Waits between freeze attempts (ms). */
const FREEZE_RETRIES = [50, 200, 800]

/** runc with this node's own state directory, so nodes never see each other's containers. */
export class Runc implements OciRuntime {
  readonly isolation = 'runc' as const

  constructor(private readonly root: string) {}

  private args(...rest: string[]): string[] {
    return ['--root', this.root, ...rest]
  }

  /**
   * Starts a container detached. runc and then the container's first process
   * write to `logPath` (the sandbox log); runc returns once that process has
   * been exec'd. Waiting for 'exit', not 'close': the container keeps the
   * inherited descriptors open for its whole life.
   */
  async runDetached(id: string, bundle: string, logPath: string): Promise<void> {
    const code = await runLogged(
      'runc',
      this.args('run', '--detach', '--bundle', bundle, id),
      logPath,
    )
    if (code !== 0) throw new CommandError('runc run', code, runcErrors(logPath))
  }

  async state(id: string): Promise<ContainerState | undefined> {
    try {
      return JSON.parse(await run('runc', this.args('state', id))) as ContainerState
    } catch (err) {
      if (err instanceof CommandError && /does not exist/.test(err.stderr)) return undefined
      throw err
    }
  }

  async list(): Promise<ContainerState[]> {
    const out = await run('runc', this.args('list', '--format', 'json'))
    return (JSON.parse(out.trim() || 'null') as ContainerState[] | null) ?? []
  }

  /** Kills every process of the container and removes it (cgroups included); idempotent. */
  async destroy(id: string): Promise<void> {
    try {
      await run('runc', this.args('delete', '--force', id))
    } catch (err) {
      if (err instanceof CommandError && /does not exist/.test(err.stderr)) return
      throw err
    }
  }

  /**
   * Freezes every process of the container. The cgroup freezer can fail to
   * settle while processes sit in uninterruptible sleep (a loaded host):
   * runc then gives up ('unable to freeze') and leaves them running, so it is
   * tried again a few times, then reported as the passing condition it is.
   */
  async pause(id: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await run('runc', this.args('pause', id))
        return
      } catch (err) {
        const transient = err instanceof CommandError && /unable to freeze/.test(err.stderr)
        if (!transient) throw err
        if (attempt >= FREEZE_RETRIES.length) {
          throw new WarrenError(
            'unavailable',
            'the sandbox could not be frozen just now (its processes were busy in the kernel); retry',
            { cause: err },
          )
        }
        await sleep(FREEZE_RETRIES[attempt]!)
      }
    }
  }

  async resume(id: string): Promise<void> {
    await run('runc', this.args('resume', id))
  }
}

/** runc's own error lines from the end of a log it shares with the container. */
export function runcErrors(logPath: string): string {
  const tail = readFileSync(logPath, 'utf8').slice(-8192)
  const errors = tail.split('\n').filter((l) => l.includes('level=error'))
  return (errors.length ? errors : tail.split('\n').slice(-5)).join('\n')
}
