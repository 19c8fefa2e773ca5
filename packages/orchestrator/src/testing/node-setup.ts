import { createLogger, loadOrchestratorConfig, newSandboxId, WarrenError } from '@warren/shared'
import { createNode } from '../create-node.js'
import type { SandboxNode } from '../node.js'
import { MemoryHost } from './memory-host.js'

/** Helpers of the node's unit tests: a node over an in-memory host. */

export const quiet = () => createLogger('node-test', 'silent')

export function setup(
  over: {
    memoryCapacityMb?: number
    maxFrozenMemoryMb?: number
    warmPool?: Record<string, number>
    warmPoolIdleMs?: number
  } = {},
  pool?: string,
) {
  const host = new MemoryHost(pool)
  const cfg = loadOrchestratorConfig(
    { nodeId: 'unit', memoryCapacityMb: 4096, maxConcurrentCreates: 4, ...over },
    {},
  )
  return { host, node: createNode(cfg, { host, log: quiet() }) }
}

export async function created(
  node: SandboxNode,
  over: Partial<Parameters<SandboxNode['create']>[0]> = {},
) {
  return node.create({ sandboxId: newSandboxId(), templateId: 'base', memoryMb: 512, ...over })
}

export async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return err instanceof WarrenError ? err.code : `raw: ${(err as Error).message}`
  }
}
