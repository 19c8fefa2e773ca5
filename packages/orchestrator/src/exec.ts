import { spawnCommand } from './spawner.js'

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode}): ${stderr.trim().slice(0, 2000)}`)
    this.name = 'CommandError'
  }
}

export interface RunOptions {
  input?: string
  timeoutMs?: number
  /** Exit codes that count as success besides 0. */
  okCodes?: number[]
  cwd?: string
}

/**
 * Runs a host tool (runc, ip, nft, mount...) and returns its stdout. Failures
 * become CommandErrors carrying stderr, so callers translate them where they
 * enter instead of leaking raw child-process errors. The command is started
 * by the node's helper process (see spawner.ts), never by the node's own.
 */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await spawnCommand({
    cmd,
    args,
    input: opts.input ?? '',
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  })
  const command = `${cmd} ${args.join(' ')}`
  if (r.error !== undefined) throw new CommandError(command, null, r.error)
  if (r.code === 0 || (r.code !== null && opts.okCodes?.includes(r.code))) return r.out
  throw new CommandError(command, r.code, r.err)
}

/**
 * Starts a command whose stdout and stderr are appended to `logPath` and
 * resolves with its exit code once it exits (what it leaves running may keep
 * the log open). Not starting at all is a CommandError.
 */
export async function runLogged(
  cmd: string,
  args: string[],
  logPath: string,
): Promise<number | null> {
  const r = await spawnCommand({ cmd, args, logPath })
  if (r.error !== undefined) throw new CommandError(`${cmd} ${args.join(' ')}`, null, r.error)
  return r.code
}
