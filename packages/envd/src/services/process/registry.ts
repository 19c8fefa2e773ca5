import { Code, ConnectError } from '@connectrpc/connect'
import type { ProcessSelector } from '@warren/shared/gen/process/process_pb'
import type { ProcessHandle } from './process-handle.js'

/** Running processes by pid; a process leaves the registry when it exits. */
export class ProcessRegistry {
  private readonly byPid = new Map<number, ProcessHandle>()

  add(handle: ProcessHandle): void {
    this.byPid.set(handle.pid, handle)
    void handle.waitExit().then(() => {
      if (this.byPid.get(handle.pid) === handle) this.byPid.delete(handle.pid)
    })
  }

  all(): ProcessHandle[] {
    return [...this.byPid.values()]
  }

  /** The process a selector names; not_found when there is none. */
  get(selector: ProcessSelector | undefined): ProcessHandle {
    const sel = selector?.selector
    if (sel?.case === 'pid') {
      const handle = this.byPid.get(sel.value)
      if (!handle) throw new ConnectError(`process with pid ${sel.value} not found`, Code.NotFound)
      return handle
    }
    if (sel?.case === 'tag') {
      for (const handle of this.byPid.values()) if (handle.tag === sel.value) return handle
      throw new ConnectError(`process with tag ${sel.value} not found`, Code.NotFound)
    }
    throw new ConnectError('process selector (pid or tag) is required', Code.InvalidArgument)
  }

  /** Kills every process (envd shutdown). */
  killAll(): void {
    for (const handle of this.byPid.values()) handle.proc.kill('SIGKILL')
  }
}
