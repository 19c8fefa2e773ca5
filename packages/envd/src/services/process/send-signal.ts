import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect'
import { type Process, Signal } from '@warren/shared/gen/process/process_pb'
import type { ProcessDeps } from './deps.js'

export function createSendSignal(deps: ProcessDeps): ServiceImpl<typeof Process>['sendSignal'] {
  return (req) => {
    const handle = deps.registry.get(req.process)
    if (req.signal === Signal.SIGKILL) handle.proc.kill('SIGKILL')
    else if (req.signal === Signal.SIGTERM) handle.proc.kill('SIGTERM')
    else throw new ConnectError(`unsupported signal ${req.signal}`, Code.InvalidArgument)
    return {}
  }
}
