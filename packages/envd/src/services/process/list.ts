import type { ServiceImpl } from '@connectrpc/connect'
import type { Process } from '@warren/shared/gen/process/process_pb'
import type { ProcessDeps } from './deps.js'

export function createList(deps: ProcessDeps): ServiceImpl<typeof Process>['list'] {
  return () => ({
    processes: deps.registry.all().map((h) => ({ pid: h.pid, tag: h.tag, config: h.config })),
  })
}
