import type { ConnectRouter } from '@connectrpc/connect'
import { Process } from '@warren/shared/gen/process/process_pb'
import { createCloseStdin } from './close-stdin.js'
import { createConnect } from './connect.js'
import type { ProcessDeps } from './deps.js'
import { createList } from './list.js'
import { createSendInput } from './send-input.js'
import { createSendSignal } from './send-signal.js'
import { createStart } from './start.js'
import { createStreamInput } from './stream-input.js'
import { createUpdate } from './update.js'

export function registerProcessService(router: ConnectRouter, deps: ProcessDeps): void {
  router.service(Process, {
    start: createStart(deps),
    connect: createConnect(deps),
    list: createList(deps),
    sendInput: createSendInput(deps),
    streamInput: createStreamInput(deps),
    sendSignal: createSendSignal(deps),
    closeStdin: createCloseStdin(deps),
    update: createUpdate(deps),
  })
}
