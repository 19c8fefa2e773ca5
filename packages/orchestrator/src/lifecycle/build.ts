import { parseTemplateId, WarrenError } from '@warren/shared'
import type pLimit from 'p-limit'
import type { TemplateMetadata } from '../templates/metadata.js'
import type { BuildLog, TemplateBuildSpec } from '../templates/run-build.js'
import type { NodeState } from './entries.js'

/**
 * Builds a template once one of the node's build slots is free
 * (`maxConcurrentBuilds`); `started` says when. The build's memory is held
 * for as long as it runs, like a sandbox's.
 */
export function buildTemplate(
  node: NodeState,
  slots: ReturnType<typeof pLimit>,
  spec: TemplateBuildSpec,
  on: { started: () => void; log: BuildLog; signal: AbortSignal },
): Promise<{ metadata: TemplateMetadata; cached: number; built: number }> {
  parseTemplateId(spec.templateId)
  if (spec.cpuCount > node.host.cpuCount || spec.cpuCount < 1) {
    throw new WarrenError(
      'invalid_argument',
      `cpuCount must be 1 to this node's ${node.host.cpuCount} CPUs`,
    )
  }
  if (spec.memoryMb < 128)
    throw new WarrenError('invalid_argument', 'memoryMB must be at least 128')
  return slots(async () => {
    on.signal.throwIfAborted()
    node.reserveMemory(spec.memoryMb)
    try {
      on.started()
      return await node.host.buildTemplate(spec, on.log, on.signal)
    } finally {
      node.releaseMemory(spec.memoryMb)
    }
  })
}
