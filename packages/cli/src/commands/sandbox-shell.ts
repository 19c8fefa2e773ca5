import type { Command } from 'commander'
import { Sandbox } from 'e2b'
import {
  type ConnectionFlags,
  resolveConnection,
  sdkOptions,
  withConnectionFlags,
} from '../lib/connection.js'

/** How often an open shell extends the sandbox's lease, and by how much (never shortening it). */
const KEEPALIVE_MS = 30_000
const KEEPALIVE_LEASE_MS = 5 * 60_000

/**
 * `warren sandbox shell <id>`: an interactive terminal on the sandbox over
 * envd's PTY, as `e2b sandbox connect` gives. The local terminal is put in
 * raw mode (keys, Ctrl-C and Ctrl-D go to the remote shell), its size
 * follows SIGWINCH, and the command exits with the shell's exit code.
 * Piped input runs as a script in a login shell without a terminal.
 */
export function registerShell(sandbox: Command): void {
  withConnectionFlags(sandbox.command('shell').argument('<sandboxId>'))
    .description('open an interactive shell in a sandbox')
    .option('-u, --user <user>', 'user', 'user')
    .option('--cwd <dir>', 'working directory')
    .action(async (id: string, opts: ConnectionFlags & ShellOptions) => {
      const code = await shell(id, opts)
      // Exit now (idle keep-alive connections would hold the process a while),
      // once what the shell printed last has been written.
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()))
      process.exit(code)
    })
}

async function shell(id: string, opts: ConnectionFlags & ShellOptions): Promise<number> {
  const conn = sdkOptions(resolveConnection(opts))
  // Connect resumes a paused sandbox and extends a running one's lease.
  const sbx = await Sandbox.connect(id, conn)
  const keepalive = setInterval(
    () => void Sandbox.connect(id, { ...conn, timeoutMs: KEEPALIVE_LEASE_MS }).catch(() => {}),
    KEEPALIVE_MS,
  )
  try {
    return process.stdin.isTTY ? await terminal(sbx, opts) : await piped(sbx, opts)
  } finally {
    clearInterval(keepalive)
  }
}

type ShellOptions = { user: string; cwd?: string }

/** A terminal on stdin: a remote PTY, raw keys, the window size following SIGWINCH. */
async function terminal(sbx: Sandbox, opts: ShellOptions): Promise<number> {
  const out = process.stdout
  const size = () => ({ cols: out.columns || 80, rows: out.rows || 24 })
  const handle = await sbx.pty.create({
    ...size(),
    user: opts.user,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    timeoutMs: 0,
    onData: (data) => {
      out.write(data)
    },
  })
  const onResize = () => void sbx.pty.resize(handle.pid, size()).catch(() => {})
  process.on('SIGWINCH', onResize)
  process.stdin.setRawMode(true)
  try {
    return await forwardStdin(
      (chunk) => sbx.pty.sendInput(handle.pid, chunk),
      async () => {},
      handle.wait(),
    )
  } finally {
    process.off('SIGWINCH', onResize)
    process.stdin.setRawMode(false)
  }
}

/**
 * Piped input: a login shell with no terminal reads it as a script, and the
 * input's end closes the shell's stdin. (Through a PTY, the end would be a
 * Ctrl-D byte, which a shell that has not yet put its terminal in raw mode
 * reads as a NUL and waits on.)
 */
async function piped(sbx: Sandbox, opts: ShellOptions): Promise<number> {
  const handle = await sbx.commands.run('exec bash -l', {
    background: true,
    stdin: true,
    user: opts.user,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    timeoutMs: 0,
    onStdout: (data) => void process.stdout.write(data),
    onStderr: (data) => void process.stderr.write(data),
  })
  return forwardStdin(
    (chunk) => handle.sendStdin(chunk),
    () => handle.closeStdin(),
    handle.wait(),
  )
}

/** Forwards stdin in order (one call per chunk, chained) until the remote process ends; its exit code. */
async function forwardStdin(
  send: (chunk: Uint8Array) => Promise<void>,
  close: () => Promise<void>,
  ended: Promise<{ exitCode: number }>,
): Promise<number> {
  const stdin = process.stdin
  let sending = Promise.resolve()
  const onInput = (chunk: Buffer) => {
    sending = sending.then(() => send(new Uint8Array(chunk))).catch(() => {})
  }
  const onEnd = () => {
    sending = sending.then(close).catch(() => {})
  }
  stdin.on('data', onInput)
  stdin.once('end', onEnd)
  stdin.resume()
  try {
    const result = await ended.catch((err: unknown) => {
      // A non-zero exit arrives as CommandExitError, which carries the result.
      if (err && typeof err === 'object' && 'exitCode' in err) return err as { exitCode: number }
      throw err
    })
    return result.exitCode
  } finally {
    stdin.off('data', onInput)
    stdin.off('end', onEnd)
    stdin.pause()
  }
}
