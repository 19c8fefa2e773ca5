import { createLogger, type Logger, type OrchestratorConfig } from '@warren/shared'
import { createMachineHost } from './host/machine.js'
import type { NodeHost } from './host/node-host.js'
import { SandboxNode } from './node.js'

export interface NodeDeps {
  log?: Logger
  /** The machine the node drives; an in-memory stand-in in unit tests. */
  host?: NodeHost
}

/** A node on this machine's real host (or on the given one). */
export function createNode(cfg: OrchestratorConfig, deps: NodeDeps = {}): SandboxNode {
  const log = deps.log ?? createLogger('orchestrator')
  return new SandboxNode(cfg, log, deps.host ?? createMachineHost(cfg, log))
}
