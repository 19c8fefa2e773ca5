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
 */
export function registerShell(sandbox: Command): void {
  withConnectionFlags(sandbox.command('shell').argument('<sandboxId>'))
    .description('open an interactive shell in a sandbox')
    .option('-u, --user <user>', 'user', 'user')
    .option('--cwd <dir>', 'working directory')
    .action(async (id: string, opts: ConnectionFlags & { user: string; cwd?: string }) => {
      const code = await shell(id, opts)
      // Exit now (idle keep-alive connections would hold the process a while),
      // once what the shell printed last has been written.
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()))
      process.exit(code)
    })
}

async function shell(
  id: string,
  opts: ConnectionFlags & { user: string; cwd?: string },
): Promise<number> {
  const conn = sdkOptions(resolveConnection(opts))
  // Connect resumes a paused sandbox and extends a running one's lease.
  const sbx = await Sandbox.connect(id, conn)
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
  const pid = handle.pid

  // Keystrokes go in order: each is one SendInput call, so they are chained.
  let sending = Promise.resolve()
  const onInput = (chunk: Buffer) => {
    sending = sending.then(() => sbx.pty.sendInput(pid, new Uint8Array(chunk))).catch(() => {})
  }
  const onResize = () => void sbx.pty.resize(pid, size()).catch(() => {})
  const keepalive = setInterval(
    () => void Sandbox.connect(id, { ...conn, timeoutMs: KEEPALIVE_LEASE_MS }).catch(() => {}),
    KEEPALIVE_MS,
  )
  const stdin = process.stdin
  // Piped input (not a terminal): its end is the shell's end of input, Ctrl-D.
  const onEnd = () => onInput(Buffer.from([4]))
  if (stdin.isTTY) stdin.setRawMode(true)
  else stdin.once('end', onEnd)
  stdin.on('data', onInput)
  stdin.resume()
  process.on('SIGWINCH', onResize)
  try {
    const result = await handle.wait().catch((err: unknown) => {
      // A non-zero exit arrives as CommandExitError, which carries the result.
      if (err && typeof err === 'object' && 'exitCode' in err) return err as { exitCode: number }
      throw err
    })
    return result.exitCode
  } finally {
    clearInterval(keepalive)
    process.off('SIGWINCH', onResize)
    stdin.off('data', onInput)
    stdin.off('end', onEnd)
    if (stdin.isTTY) stdin.setRawMode(false)
    stdin.pause()
  }
}
