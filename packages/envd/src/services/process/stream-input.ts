import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect'
import type { Process } from '@warren/shared/gen/process/process_pb'
import type { ProcessDeps } from './deps.js'
import { writeInput } from './input.js'
import type { ProcessHandle } from './process-handle.js'

/** Client streaming input: a start event selects the process, data events follow. */
export function createStreamInput(deps: ProcessDeps): ServiceImpl<typeof Process>['streamInput'] {
  return async (requests) => {
    let handle: ProcessHandle | undefined
    for await (const req of requests) {
      const event = req.event
      if (event.case === 'start') handle = deps.registry.get(event.value.process)
      else if (event.case === 'data') {
        if (!handle) throw new ConnectError('data before start event', Code.FailedPrecondition)
        writeInput(handle, event.value.input)
      }
    }
    return {}
  }
}
