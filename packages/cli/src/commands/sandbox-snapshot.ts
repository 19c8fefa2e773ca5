import type { Command } from 'commander'
import { Sandbox } from 'e2b'
import {
  type ConnectionFlags,
  resolveConnection,
  sdkOptions,
  withConnectionFlags,
} from '../lib/connection.js'
import { print, printOne } from '../lib/output.js'

type Flags = ConnectionFlags & { json?: boolean }

/** `warren sandbox snapshot <id> [--name n]` and `warren sandbox fork <id> [--count n]`. */
export function registerSnapshotFork(sandbox: Command): void {
  withConnectionFlags(sandbox.command('snapshot').argument('<sandboxId>'))
    .description("make a template of a sandbox's files (it keeps running); create from its id")
    .option('--name <name>', 'a name to create from, as with a template')
    .action(async (id: string, opts: Flags & { name?: string }) => {
      const conn = sdkOptions(resolveConnection(opts))
      const snap = await Sandbox.createSnapshot(id, {
        ...conn,
        ...(opts.name ? { name: opts.name } : {}),
      })
      printOne({ snapshotId: snap.snapshotId, names: snap.names }, opts.json)
    })

  withConnectionFlags(sandbox.command('fork').argument('<sandboxId>'))
    .description("new sandboxes from a sandbox's files (fresh processes); it keeps running")
    .option('--count <n>', 'how many (1-100)', '1')
    .option('--timeout <seconds>', "each fork's lease (default: the source's)")
    .action(async (id: string, opts: Flags & { count: string; timeout?: string }) => {
      const conn = sdkOptions(resolveConnection(opts))
      const forks = await Sandbox.fork(id, {
        ...conn,
        count: Number(opts.count),
        ...(opts.timeout ? { timeoutMs: Number(opts.timeout) * 1000 } : {}),
      })
      // Warren copies the files, not the processes: each fork boots afresh.
      const rows = forks.map((f) =>
        f instanceof Error
          ? { sandboxId: '', error: f.message }
          : { sandboxId: f.sandboxId, error: '' },
      )
      print(rows, opts.json)
      if (rows.some((r) => r.error)) process.exitCode = 1
    })
}
