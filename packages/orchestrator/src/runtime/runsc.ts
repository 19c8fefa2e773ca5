import { spawn } from 'node:child_process'
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { CommandError, run } from '../exec.js'
import type { ContainerState, OciRuntime } from './oci-runtime.js'

/**
 * What runsc said went wrong: its refusal (a save rejected names the TCP
 * connection it could not save) without the dump of Go state around it.
 */
function runscErrors(logPath: string, from: number): string {
  const tail = readFileSync(logPath).subarray(from).toString('utf8')
  const rejected = /save rejected due to [^\n]*/.exec(tail)
  if (rejected) return rejected[0].slice(0, 500)
  // A refused save names the object it could not encode, then why, at the end of a long line.
  const failedLine = tail.split('\n').find((l) => /^\w+ failed: /.test(l))
  if (failedLine) return `${failedLine.slice(0, 200)} … ${failedLine.slice(-400)}`
  const failed = tail.split('\n').filter((l) => /failed|error/i.test(l) && l.length < 2000)
  return failed.length ? failed.slice(-3).join('\n') : tail.split('\n').slice(0, 5).join('\n')
}

export type GvisorPlatform = 'kvm' | 'ptrace'

/** A start that takes longer is a platform that hangs (KVM in some nested VMs). */
const START_TIMEOUT_MS = 60_000

/**
 * gVisor's runsc with this node's own state directory. Same CLI shape as
 * runc; the differences are in how a container starts (see runDetached) and
 * in the bundle (runtime/gvisor-spec.ts).
 */
export class Runsc implements OciRuntime {
  readonly isolation = 'gvisor' as const

  constructor(
    private readonly root: string,
    readonly platform: GvisorPlatform,
    /** An empty directory where each start mounts a fresh procfs (see runDetached). */
    private readonly procDir: string,
  ) {}

  private args(...rest: string[]): string[] {
    return ['--root', this.root, ...rest]
  }

  /** Starts a container detached (see inOwnProc for how). */
  async runDetached(id: string, bundle: string, logPath: string): Promise<void> {
    await this.inOwnProc('run', ['run', '--detach', '--bundle', bundle, id], logPath, bundle)
  }

  /**
   * Saves the whole sandbox (its kernel, processes and memory) into
   * `imageDir/checkpoint.img` and ends it: Debian's runsc has no checkpoint
   * that leaves it running (its `--leave-running` restores in the foreground
   * and never returns), so a caller that wants it back restores it. gVisor
   * refuses (and the sandbox ends all the same) while its network stack holds
   * a TCP connection on eth0 that is open or in TIME_WAIT.
   */
  async checkpoint(id: string, imageDir: string, logPath: string): Promise<void> {
    await this.inOwnProc('checkpoint', ['checkpoint', '--image-path', imageDir, id], logPath)
  }

  /**
   * Starts a container from a checkpoint: the saved processes continue in
   * this bundle's root, cgroup and network namespace. gVisor does not save
   * its network stack: the restored one takes eth0's addresses as a start
   * does, so a restore into another slot gets that slot's address.
   */
  async restore(id: string, bundle: string, imageDir: string, logPath: string): Promise<void> {
    await this.inOwnProc(
      'restore',
      ['restore', '--detach', '--image-path', imageDir, '--bundle', bundle, id],
      logPath,
      bundle,
    )
  }

  /**
   * Runs a runsc command that starts a sandbox (run, restore, checkpoint).
   * Debian's runsc (2022) decides that it was given the host's network
   * namespace when /proc/sys/net/core/rmem_default exists there, which
   * kernels since 6.x show in every namespace; it then refuses to start. So
   * runsc runs in a mount namespace of its own where /proc/sys/net is an
   * empty tmpfs (its network setup reads nothing there), plus a second,
   * uncovered procfs mount, without which the kernel would refuse the procfs
   * mounts runsc's gofer and sandbox make in their user namespace (a procfs
   * with covered parts is not "fully visible"). Both mounts exist only in
   * that namespace and go with it.
   */
  private async inOwnProc(
    label: string,
    command: string[],
    logPath: string,
    /** A start's bundle, whose cgroups a failed start leaves. */
    bundle?: string,
  ): Promise<void> {
    mkdirSync(this.procDir, { recursive: true, mode: 0o700 })
    const script =
      'mount -t proc proc "$0" && mount -t tmpfs -o size=4k,mode=555 none /proc/sys/net && exec "$@"'
    const argv = [
      '--mount',
      '--propagation',
      'private',
      '--',
      '/bin/sh',
      '-c',
      script,
      this.procDir,
      'runsc',
      ...this.args(
        `--platform=${this.platform}`,
        // The sandbox's CPU count follows its quota, not the host's CPUs.
        '--cpu-num-from-quota',
        ...command,
      ),
    ]
    const log = openSync(logPath, 'a', 0o600)
    const from = fstatSync(log).size
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn('unshare', argv, { stdio: ['ignore', log, log] })
        const timer = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT_MS)
        child.on('error', (e) => reject(new CommandError(`runsc ${label}`, null, e.message)))
        child.on('exit', (c) => {
          clearTimeout(timer)
          resolve(c)
        })
      })
      if (code !== 0) {
        // A failed start or restore leaves its cgroups behind.
        if (bundle) removeEmptyCgroups(bundle)
        throw new CommandError(`runsc ${label}`, code, runscErrors(logPath, from))
      }
    } finally {
      closeSync(log)
    }
  }

  async state(id: string): Promise<ContainerState | undefined> {
    const state = await this.rawState(id)
    // runsc (2022) keeps saying "paused" of a sandbox whose kernel was
    // killed behind its back: its sandbox process tells the truth.
    if (state && state.status !== 'stopped' && state.pid && !hostProcessLives(state.pid))
      return { ...state, status: 'stopped' }
    return state
  }

  private async rawState(id: string): Promise<ContainerState | undefined> {
    try {
      return JSON.parse(await run('runsc', this.args('state', id))) as ContainerState
    } catch (err) {
      if (err instanceof CommandError && /does not exist/.test(err.stderr)) return undefined
      throw err
    }
  }

  async list(): Promise<ContainerState[]> {
    mkdirSync(this.root, { recursive: true, mode: 0o700 })
    const out = await run('runsc', this.args('list', '--format', 'json'))
    return (JSON.parse(out.trim() || 'null') as ContainerState[] | null) ?? []
  }

  /**
   * Kills the sandbox kernel with everything in it and removes the container
   * (idempotent). runsc (2022) panics deleting a paused container, so a
   * paused one is resumed first: its processes run for the moment until the
   * kill, which a files-only pause tolerates (its disk is unmounted after,
   * which writes out whatever they did).
   */
  async destroy(id: string): Promise<void> {
    const state = await this.rawState(id)
    if (state?.status === 'paused') {
      if (state.pid && hostProcessLives(state.pid)) await this.resume(id).catch(() => {})
      else this.markStopped(id)
    }
    try {
      await run('runsc', this.args('delete', '--force', id))
    } catch (err) {
      if (err instanceof CommandError && /does not exist/.test(err.stderr)) return
      throw err
    }
  }

  /**
   * A paused container whose sandbox died cannot be resumed, and deleting it
   * panics on "paused => stopped": its state file is told the truth first,
   * so that delete removes it, its cgroups included.
   */
  private markStopped(id: string): void {
    for (const name of readdirSync(this.root)) {
      if (!name.startsWith(`${id}_sandbox:`) || !name.endsWith('.state')) continue
      const path = join(this.root, name)
      const saved = JSON.parse(readFileSync(path, 'utf8')) as { status?: string }
      writeFileSync(`${path}.tmp`, JSON.stringify({ ...saved, status: 'stopped' }), { mode: 0o600 })
      renameSync(`${path}.tmp`, path)
    }
  }

  /** Runs a command in the container (as its first process's user) and returns its output. */
  async exec(id: string, argv: string[]): Promise<string> {
    return run('runsc', this.args('exec', id, ...argv))
  }

  /** Sends a signal to the container's first process (tini, which passes it on). */
  async signal(id: string, signal: string): Promise<void> {
    await run('runsc', this.args('kill', id, signal))
  }

  /** gVisor stops its own tasks: no cgroup freezer, nothing in the host kernel to wait for. */
  async pause(id: string): Promise<void> {
    await run('runsc', this.args('pause', id))
  }

  async resume(id: string): Promise<void> {
    await run('runsc', this.args('resume', id))
  }
}

/**
 * runsc (2022) makes the container's cgroups before it starts the sandbox and
 * leaves them when the start fails, and `delete` of a container that never
 * existed removes nothing: so a failed start removes them itself. rmdir
 * refuses a cgroup that still holds a process, so only empty ones go.
 */
function removeEmptyCgroups(bundle: string): void {
  let path: string | undefined
  try {
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as {
      linux?: { cgroupsPath?: string }
    }
    path = spec.linux?.cgroupsPath
  } catch {
    return
  }
  if (!path) return
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    try {
      rmdirSync(join('/sys/fs/cgroup', controller, path))
    } catch {
      // not made under this controller, or not empty
    }
  }
}

/** Whether a host process exists and is neither a zombie nor dead. */
function hostProcessLives(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X' && state !== 'x'
  } catch {
    return false
  }
}
