import type { Command } from 'commander'
import { Sandbox } from 'e2b'
import {
  type ConnectionFlags,
  resolveConnection,
  sdkOptions,
  withConnectionFlags,
} from '../lib/connection.js'
import { print, printOne } from '../lib/output.js'
import { registerPauseResume } from './sandbox-pause.js'
import { registerShell } from './sandbox-shell.js'
import { registerSnapshotFork } from './sandbox-snapshot.js'

type Flags = ConnectionFlags & { json?: boolean }

function infoRow(i: Awaited<ReturnType<typeof Sandbox.getInfo>>) {
  return {
    sandboxId: i.sandboxId,
    template: i.templateId,
    state: i.state,
    startedAt: i.startedAt,
    endAt: i.endAt,
    cpu: i.cpuCount,
    memoryMB: i.memoryMB,
    metadata: i.metadata,
  }
}

function parseMetadata(pairs: string[] = []): Record<string, string> {
  return Object.fromEntries(
    pairs.map((p) => {
      const i = p.indexOf('=')
      if (i < 1) throw new Error(`metadata '${p}' is not key=value`)
      return [p.slice(0, i), p.slice(i + 1)]
    }),
  )
}

export function registerSandbox(program: Command): void {
  const sandbox = program.command('sandbox').alias('sbx').description('manage sandboxes')

  withConnectionFlags(sandbox.command('create'))
    .description('create a sandbox and print its id')
    .option('-t, --template <template>', 'template', 'base')
    .option('--timeout <seconds>', 'lifetime before it is killed', '300')
    .option('-m, --metadata <key=value...>', 'metadata')
    .action(async (opts: Flags & { template: string; timeout: string; metadata?: string[] }) => {
      const sbx = await Sandbox.create(opts.template, {
        ...sdkOptions(resolveConnection(opts)),
        timeoutMs: Number(opts.timeout) * 1000,
        metadata: parseMetadata(opts.metadata),
      })
      if (opts.json) printOne({ sandboxId: sbx.sandboxId }, true)
      else process.stdout.write(`${sbx.sandboxId}\n`)
    })

  withConnectionFlags(sandbox.command('list').alias('ls'))
    .description('list sandboxes')
    .option('-s, --state <state...>', 'running, paused')
    .option('-m, --metadata <key=value...>', 'filter by metadata')
    .action(async (opts: Flags & { state?: Array<'running' | 'paused'>; metadata?: string[] }) => {
      const paginator = Sandbox.list({
        ...sdkOptions(resolveConnection(opts)),
        query: {
          ...(opts.state ? { state: opts.state } : {}),
          metadata: parseMetadata(opts.metadata),
        },
      })
      const rows: Array<Record<string, unknown>> = []
      while (paginator.hasNext) for (const i of await paginator.nextItems()) rows.push(infoRow(i))
      print(rows, opts.json)
    })

  withConnectionFlags(sandbox.command('info').argument('<sandboxId>'))
    .description('show a sandbox')
    .action(async (id: string, opts: Flags) => {
      printOne(infoRow(await Sandbox.getInfo(id, sdkOptions(resolveConnection(opts)))), opts.json)
    })

  withConnectionFlags(sandbox.command('kill').argument('<sandboxId...>'))
    .description('kill sandboxes')
    .action(async (ids: string[], opts: Flags) => {
      const conn = sdkOptions(resolveConnection(opts))
      const rows = []
      for (const id of ids) rows.push({ sandboxId: id, killed: await Sandbox.kill(id, conn) })
      print(rows, opts.json)
      if (rows.some((r) => !r.killed)) process.exitCode = 1
    })

  withConnectionFlags(sandbox.command('timeout').argument('<sandboxId>').argument('<seconds>'))
    .description('set the remaining lifetime (may shorten; 0 ends it now)')
    .action(async (id: string, seconds: string, opts: Flags) => {
      await Sandbox.setTimeout(id, Number(seconds) * 1000, sdkOptions(resolveConnection(opts)))
      if (opts.json) printOne({ sandboxId: id, timeout: Number(seconds) }, true)
    })

  withConnectionFlags(sandbox.command('exec').argument('<sandboxId>').argument('<command...>'))
    .description('run a command in a sandbox and stream its output')
    .option('-u, --user <user>', 'user', 'user')
    .option('--cwd <dir>', 'working directory')
    .action(async (id: string, command: string[], opts: Flags & { user: string; cwd?: string }) => {
      const sbx = await Sandbox.connect(id, sdkOptions(resolveConnection(opts)))
      const result = await sbx.commands
        .run(command.join(' '), {
          user: opts.user,
          ...(opts.cwd ? { cwd: opts.cwd } : {}),
          timeoutMs: 0,
          onStdout: (d) => {
            if (!opts.json) process.stdout.write(d)
          },
          onStderr: (d) => {
            if (!opts.json) process.stderr.write(d)
          },
        })
        .catch((err: unknown) => {
          // CommandExitError carries the result of a non-zero exit.
          if (err && typeof err === 'object' && 'exitCode' in err) {
            return err as { exitCode: number; stdout: string; stderr: string }
          }
          throw err
        })
      if (opts.json)
        printOne({ exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr }, true)
      process.exitCode = result.exitCode
    })

  registerShell(sandbox)
  registerPauseResume(sandbox)
  registerSnapshotFork(sandbox)
}
