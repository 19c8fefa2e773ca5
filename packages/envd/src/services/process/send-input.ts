import type { ServiceImpl } from '@connectrpc/connect'
import type { Process } from '@warren/shared/gen/process/process_pb'
import type { ProcessDeps } from './deps.js'
import { writeInput } from './input.js'

export function createSendInput(deps: ProcessDeps): ServiceImpl<typeof Process>['sendInput'] {
  return (req) => {
    writeInput(deps.registry.get(req.process), req.input)
    return {}
  }
}
