import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { createClient } from '@connectrpc/connect'
import { createConnectTransport } from '@connectrpc/connect-node'
import { WarrenError } from '@warren/shared'
import { Process } from '@warren/shared/gen/process/process_pb'

/**
 * The node's way into a sandbox it started: envd at the sandbox's address
 * (reachable from the host only), with the sandbox's access token. Used by
 * template builds (RUN, COPY) and by start and ready commands.
 */
export interface EnvdTarget {
  host: string
  port: number
  accessToken: string | undefined
}

export interface CommandSpec {
  /** A shell command line, run by /bin/sh -c as E2B does. */
  cmd: string
  user: string
  cwd?: string
  envs?: Record<string, string>
}

function headers(target: EnvdTarget, user: string): Record<string, string> {
  return {
    authorization: `Basic ${Buffer.from(`${user}:`).toString('base64')}`,
    ...(target.accessToken ? { 'x-access-token': target.accessToken } : {}),
  }
}

function processClient(target: EnvdTarget) {
  return createClient(
    Process,
    createConnectTransport({ baseUrl: `http://${target.host}:${target.port}`, httpVersion: '1.1' }),
  )
}

/**
 * Runs a command to its end, handing its output to `onOutput` as it comes;
 * returns its exit code. `signal` stops waiting (and so the process, whose
 * deadline is the stream's).
 */
export async function runCommand(
  target: EnvdTarget,
  spec: CommandSpec,
  opts: { onOutput?: (text: string, stream: 'stdout' | 'stderr') => void; signal?: AbortSignal },
): Promise<number> {
  const events = processClient(target).start(
    {
      process: {
        cmd: '/bin/sh',
        args: ['-c', spec.cmd],
        envs: spec.envs ?? {},
        ...(spec.cwd ? { cwd: spec.cwd } : {}),
      },
      stdin: false,
    },
    { headers: headers(target, spec.user), ...(opts.signal ? { signal: opts.signal } : {}) },
  )
  try {
    for await (const res of events) {
      const ev = res.event?.event
      if (ev?.case === 'data') {
        const out = ev.value.output
        if (out.case === 'stdout' || out.case === 'stderr')
          opts.onOutput?.(Buffer.from(out.value).toString('utf8'), out.case)
      } else if (ev?.case === 'end') {
        return ev.value.exited ? ev.value.exitCode : -1
      }
    }
  } catch (err) {
    throw new WarrenError('internal', `command could not run: ${(err as Error).message}`, {
      cause: err,
    })
  }
  throw new WarrenError('internal', 'the command stream ended without an exit')
}

/** A command started to run on, followed for a while (its output tail, its exit). */
export interface StartedCommand {
  /** Set once the process ended while it was followed. */
  readonly exit: { code: number; output: string } | undefined
  /** Stops following it; the process runs on (envd's processes outlive their stream). */
  detach(): void
}

const OUTPUT_TAIL = 2000

/**
 * Starts a command that keeps running after this call: returns once envd
 * reports it started, and keeps reading its events until `detach()`, so a
 * caller waiting for it to be ready can tell that it died instead.
 */
export async function startCommand(target: EnvdTarget, spec: CommandSpec): Promise<StartedCommand> {
  const abort = new AbortController()
  const events = processClient(target)
    .start(
      {
        process: {
          cmd: '/bin/sh',
          args: ['-c', spec.cmd],
          envs: spec.envs ?? {},
          ...(spec.cwd ? { cwd: spec.cwd } : {}),
        },
        stdin: false,
      },
      { headers: headers(target, spec.user), signal: abort.signal },
    )
    [Symbol.asyncIterator]()
  try {
    for (;;) {
      const next = await events.next()
      if (next.done) throw new WarrenError('internal', 'the start command ended before it started')
      if (next.value.event?.event.case === 'start') break
    }
  } catch (err) {
    abort.abort()
    throw err
  }
  let output = ''
  const started: { exit: StartedCommand['exit']; detach(): void } = {
    exit: undefined,
    detach: () => abort.abort(),
  }
  void (async () => {
    for (let next = await events.next(); !next.done; next = await events.next()) {
      const ev = next.value.event?.event
      if (ev?.case === 'data' && ev.value.output.case !== undefined && ev.value.output.value) {
        output = (output + Buffer.from(ev.value.output.value).toString('utf8')).slice(-OUTPUT_TAIL)
      } else if (ev?.case === 'end') {
        started.exit = { code: ev.value.exited ? ev.value.exitCode : -1, output: output.trim() }
        return
      }
    }
  })().catch(() => {
    // Detached (aborted), or envd went away: nothing more to learn.
  })
  return started
}

/** Writes a host file into the sandbox at `path` as root (envd's raw /files upload). */
export async function uploadFile(target: EnvdTarget, file: string, path: string): Promise<void> {
  const { size } = await stat(file)
  const url = `http://${target.host}:${target.port}/files?path=${encodeURIComponent(path)}&username=root`
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      ...(target.accessToken ? { 'x-access-token': target.accessToken } : {}),
    },
    body: Readable.toWeb(createReadStream(file)) as ReadableStream,
    duplex: 'half',
  } as RequestInit)
  if (!res.ok) {
    throw new WarrenError(
      'internal',
      `upload into the build sandbox failed (${res.status}): ${(await res.text()).slice(0, 300)}`,
    )
  }
}
