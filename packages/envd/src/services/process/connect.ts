import type { ServiceImpl } from '@connectrpc/connect'
import type { Process } from '@warren/shared/gen/process/process_pb'
import { endOnAbort } from '../../util/end-on-abort.js'
import type { ProcessDeps } from './deps.js'
import { streamEvents } from './stream-events.js'

/** Re-attaches to a running process; output from before the attach is not replayed. */
export function createConnect(deps: ProcessDeps): ServiceImpl<typeof Process>['connect'] {
  return endOnAbort(async function* connect(req, ctx) {
    const handle = deps.registry.get(req.process)
    yield* streamEvents(handle, ctx)
  })
}
