import type { Command } from 'commander'
import { Sandbox } from 'e2b'
import {
  type ConnectionFlags,
  resolveConnection,
  sdkOptions,
  withConnectionFlags,
} from '../lib/connection.js'
import { printOne } from '../lib/output.js'

type Flags = ConnectionFlags & { json?: boolean }

function parseBool(value: string): boolean {
  if (value === 'true') return true
  if (value === 'false') return false
  throw new Error(`expected true or false, got '${value}'`)
}

/** `warren sandbox pause <id> [--memory=false]` and `warren sandbox resume <id>`. */
export function registerPauseResume(sandbox: Command): void {
  withConnectionFlags(sandbox.command('pause').argument('<sandboxId>'))
    .description('pause a sandbox (its processes frozen; --memory=false keeps only its files)')
    .option('--memory <bool>', 'keep the processes in memory', parseBool, true)
    .action(async (id: string, opts: Flags & { memory: boolean }) => {
      const conn = sdkOptions(resolveConnection(opts))
      // false: the API said 409 (already paused, or between states).
      const paused = await Sandbox.pause(id, { ...conn, keepMemory: opts.memory })
      if (opts.json) printOne({ sandboxId: id, paused, memory: opts.memory }, true)
      else if (!paused) process.stderr.write(`warren: sandbox ${id} is not running\n`)
      if (!paused) process.exitCode = 1
    })

  withConnectionFlags(sandbox.command('resume').argument('<sandboxId>'))
    .description('resume a paused sandbox (a running one keeps running)')
    .option('--timeout <seconds>', 'lease after the resume', '300')
    .action(async (id: string, opts: Flags & { timeout: string }) => {
      const conn = sdkOptions(resolveConnection(opts))
      await Sandbox.connect(id, { ...conn, timeoutMs: Number(opts.timeout) * 1000 })
      const info = await Sandbox.getInfo(id, conn)
      if (opts.json) printOne({ sandboxId: id, state: info.state }, true)
    })
}
