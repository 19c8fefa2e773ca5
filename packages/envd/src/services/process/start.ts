import { accessSync, constants, statSync } from 'node:fs'
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect'
import type { Process } from '@warren/shared/gen/process/process_pb'
import { asUser } from '../../as-user.js'
import { log } from '../../log.js'
import { endOnAbort } from '../../util/end-on-abort.js'
import { requestUser, userPath } from '../request-user.js'
import type { ProcessDeps } from './deps.js'
import { processEnv } from './environment.js'
import { ProcessHandle } from './process-handle.js'
import { spawnProc } from './spawn.js'
import { streamEvents } from './stream-events.js'

/** The working directory must exist and be enterable by the user. */
function checkCwd(cwd: string, user: Parameters<typeof asUser>[0]): void {
  try {
    asUser(user, () => {
      if (!statSync(cwd).isDirectory()) throw Object.assign(new Error(), { code: 'ENOTDIR' })
      accessSync(cwd, constants.X_OK)
    })
  } catch (err) {
    const code = (err as { code?: string }).code
    const why = code === 'EACCES' || code === 'EPERM' ? 'is not accessible' : 'does not exist'
    throw new ConnectError(`cwd '${cwd}' ${why}`, Code.InvalidArgument)
  }
}

export function createStart(deps: ProcessDeps): ServiceImpl<typeof Process>['start'] {
  return endOnAbort(async function* start(req, ctx) {
    const config = req.process
    if (!config?.cmd) throw new ConnectError('process.cmd is required', Code.InvalidArgument)
    const user = requestUser(ctx, deps.state)
    const cwd = userPath(config.cwd ?? '', user, deps.state)
    checkCwd(cwd, user)
    const env = processEnv({
      user,
      cwd,
      path: process.env.PATH,
      sandboxVars: deps.state.envVars,
      requestVars: config.envs,
    })
    const size = req.pty?.size
    const proc = await spawnProc({
      cmd: config.cmd,
      args: config.args,
      cwd,
      env,
      user,
      stdin: req.stdin ?? true,
      pty: req.pty ? { cols: size?.cols ?? 80, rows: size?.rows ?? 24 } : undefined,
    })
    const handle = new ProcessHandle(
      proc,
      { cmd: config.cmd, args: config.args, envs: config.envs, cwd },
      req.tag,
    )
    deps.registry.add(handle)
    // The process outlives this stream, but not the client's deadline: E2B
    // kills it when Connect-Timeout-Ms runs out (0/absent: no limit).
    const remaining = ctx.timeoutMs()
    if (remaining !== undefined) handle.killAfter(Math.max(0, remaining))
    log.info('process started', {
      pid: handle.pid,
      cmd: config.cmd,
      user: user.name,
      pty: proc.pty,
    })
    void handle.waitExit().then((info) => log.info('process ended', { pid: handle.pid, ...info }))
    yield* streamEvents(handle, ctx)
  })
}
