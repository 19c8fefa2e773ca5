import { spawn } from 'node:child_process'

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
 * enter instead of leaking raw child-process errors.
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
      : undefined
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new CommandError(`${cmd} ${args.join(' ')}`, null, e.message))
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      if (code === 0 || (code !== null && opts.okCodes?.includes(code))) {
        resolve(Buffer.concat(out).toString())
      } else {
        reject(new CommandError(`${cmd} ${args.join(' ')}`, code, Buffer.concat(err).toString()))
      }
    })
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}
