import { spawn } from 'node:child_process'
import { Code, ConnectError } from '@connectrpc/connect'
import type { IPty } from 'node-pty'
import type { User } from '../../users.js'
import { type ExitInfo, exitInfo } from './exit-info.js'

export type Output = 'stdout' | 'stderr' | 'pty'

/** One running OS process, piped or on a PTY, behind a uniform surface. */
export interface Proc {
  readonly pid: number
  readonly pty: boolean
  onData(cb: (stream: Output, chunk: Buffer) => void): void
  onExit(cb: (info: ExitInfo) => void): void
  pause(): void
  resume(): void
  writeStdin(data: Uint8Array): void
  closeStdin(): void
  writePty(data: Uint8Array): void
  resize(cols: number, rows: number): void
  /** Signals the process group, so a shell's children go down with it. */
  kill(signal: NodeJS.Signals): void
}

export interface SpawnOptions {
  cmd: string
  args: string[]
  cwd: string
  env: Record<string, string>
  user: User
  stdin: boolean
  pty?: { cols: number; rows: number }
}

/** uid/gid only when they differ from envd's own (a non-root envd cannot switch). */
function identity(user: User): { uid?: number; gid?: number } {
  if (process.getuid!() === user.uid && process.getgid!() === user.gid) return {}
  return { uid: user.uid, gid: user.gid }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    try {
      process.kill(pid, signal)
    } catch {
      // already gone
    }
  }
}

function startError(opts: SpawnOptions, err: unknown): ConnectError {
  const detail = err instanceof Error ? err.message : String(err)
  const cmd = [opts.cmd, ...opts.args].join(' ')
  return new ConnectError(`error starting process '${cmd}': ${detail}`, Code.InvalidArgument)
}

/**
 * After the process exits, output still in the pipes is delivered for a short
 * grace; a background child that inherited stdout must not hold the end event
 * back (E2B's envd ends the command when its process exits, too).
 */
const PIPE_GRACE_MS = 100

async function spawnPiped(opts: SpawnOptions): Promise<Proc> {
  const child = spawn(opts.cmd, opts.args, {
    cwd: opts.cwd,
    env: opts.env,
    ...identity(opts.user),
    detached: true,
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  })
  if (child.pid === undefined) {
    const err = await new Promise((resolve) => child.once('error', resolve))
    throw startError(opts, err)
  }
  child.on('error', () => {})
  child.stdin?.on('error', () => {})
  const pid = child.pid
  let paused = false
  return {
    pid,
    pty: false,
    onData(cb) {
      child.stdout!.on('data', (c: Buffer) => cb('stdout', c))
      child.stderr!.on('data', (c: Buffer) => cb('stderr', c))
    },
    onExit(cb) {
      let info: ExitInfo | undefined
      let done = false
      const finish = () => {
        if (done || !info) return
        done = true
        cb(info)
        child.stdout!.destroy()
        child.stderr!.destroy()
      }
      // While a slow client holds the output paused, unread output is still
      // owed to it: the grace only starts counting once reading resumes.
      const grace = (): void => {
        setTimeout(() => (paused ? grace() : finish()), PIPE_GRACE_MS).unref()
      }
      child.once('exit', (code, signal) => {
        info = exitInfo(code, signal)
        grace()
      })
      child.once('close', finish)
    },
    pause() {
      paused = true
      child.stdout!.pause()
      child.stderr!.pause()
    },
    resume() {
      paused = false
      child.stdout!.resume()
      child.stderr!.resume()
    },
    writeStdin(data) {
      if (!child.stdin || child.stdin.destroyed || child.stdin.writableEnded) {
        throw new ConnectError('stdin not enabled or closed', Code.FailedPrecondition)
      }
      child.stdin.write(data)
    },
    closeStdin() {
      child.stdin?.end()
    },
    writePty() {
      throw new ConnectError('process has no pty; write to stdin', Code.FailedPrecondition)
    },
    resize() {
      throw new ConnectError('process has no pty', Code.FailedPrecondition)
    },
    kill(signal) {
      killGroup(pid, signal)
    },
  }
}

let ptyModule: Promise<typeof import('node-pty')> | undefined

/** node-pty is a native addon only PTY sessions need: load it on first use. */
function loadPty(): Promise<typeof import('node-pty')> {
  ptyModule ??= import('node-pty').then(
    (m) => (m as { default?: typeof import('node-pty') }).default ?? m,
  )
  return ptyModule
}

async function spawnPty(opts: SpawnOptions, size: { cols: number; rows: number }): Promise<Proc> {
  const ptyLib = await loadPty()
  let term: IPty
  // node-pty's fork calls setgid/setuid but not setgroups, so the child would
  // keep envd's supplementary groups; give it the user's for the fork.
  const saved = process.getgroups!()
  const switchGroups = process.getuid!() === 0 && opts.user.uid !== 0
  try {
    if (switchGroups) process.setgroups!(opts.user.groups)
    term = ptyLib.spawn(opts.cmd, opts.args, {
      name: opts.env.TERM ?? 'xterm-256color',
      cols: size.cols || 80,
      rows: size.rows || 24,
      cwd: opts.cwd,
      env: opts.env,
      encoding: null,
      ...identity(opts.user),
    })
  } catch (err) {
    throw startError(opts, err)
  } finally {
    if (switchGroups) process.setgroups!(saved)
  }
  const pid = term.pid
  return {
    pid,
    pty: true,
    onData(cb) {
      term.onData((d) => cb('pty', Buffer.isBuffer(d) ? d : Buffer.from(d)))
    },
    onExit(cb) {
      term.onExit(({ exitCode, signal }) => cb(exitInfo(exitCode, signal ?? null)))
    },
    pause: () => term.pause(),
    resume: () => term.resume(),
    writeStdin() {
      throw new ConnectError('process has a pty; write to the pty', Code.FailedPrecondition)
    },
    closeStdin() {
      throw new ConnectError(
        'cannot close stdin of a pty; send Ctrl+D instead',
        Code.FailedPrecondition,
      )
    },
    writePty(data) {
      term.write(Buffer.from(data))
    },
    resize(cols, rows) {
      term.resize(cols, rows)
    },
    kill(signal) {
      killGroup(pid, signal)
    },
  }
}

export function spawnProc(opts: SpawnOptions): Promise<Proc> {
  return opts.pty ? spawnPty(opts, opts.pty) : spawnPiped(opts)
}
