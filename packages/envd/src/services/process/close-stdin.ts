import type { ServiceImpl } from '@connectrpc/connect'
import type { Process } from '@warren/shared/gen/process/process_pb'
import type { ProcessDeps } from './deps.js'

/** Sends EOF to stdin; a no-op when stdin is already closed or was never open. */
export function createCloseStdin(deps: ProcessDeps): ServiceImpl<typeof Process>['closeStdin'] {
  return (req) => {
    deps.registry.get(req.process).proc.closeStdin()
    return {}
  }
}
