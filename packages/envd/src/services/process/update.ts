import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect'
import type { Process } from '@warren/shared/gen/process/process_pb'
import type { ProcessDeps } from './deps.js'

/** Resizes a process's PTY. */
export function createUpdate(deps: ProcessDeps): ServiceImpl<typeof Process>['update'] {
  return (req) => {
    const handle = deps.registry.get(req.process)
    const size = req.pty?.size
    if (!size) return {}
    if (size.cols < 1 || size.rows < 1 || size.cols > 65535 || size.rows > 65535) {
      throw new ConnectError('pty size must be between 1 and 65535', Code.InvalidArgument)
    }
    handle.proc.resize(size.cols, size.rows)
    return {}
  }
}
