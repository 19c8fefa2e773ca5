import { join } from 'node:path'
import type { EgressPolicy, Logger, OrchestratorConfig } from '@warren/shared'
import type { AddressPool, AddressSlot } from './network/address-pool.js'
import type { GvisorNetwork } from './network/gvisor.js'
import type { PolicyTable } from './network/policies.js'
import type { NetworkSlots } from './network/slots.js'
import type { Runc } from './runtime/runc.js'
import type { Runtimes } from './runtime/runtimes.js'
import type { TemplateRegistry } from './templates/registry.js'

/** What the machine host's operations share; built once by createMachineHost. */
export interface NodeContext {
  cfg: OrchestratorConfig
  templatesDir: string
  log: Logger
  /** runc, also for template builds (which always run under runc). */
  runc: Runc
  /** Every runtime of the node; a sandbox's own is named in its record. */
  runtimes: Runtimes
  templates: TemplateRegistry
  pool: AddressPool
  slots: NetworkSlots
  /** envd's bundle directory and version, unless a custom first process is configured. */
  envd: { dir: string; version: string } | undefined
  /** LXCFS's mount, whose files give each sandbox its own /proc/meminfo, uptime...; undefined without it. */
  lxcfs: string | undefined
  /** The nftables ruleset of a sandbox's namespace, with its egress rules if any. */
  tableFor: (slot: AddressSlot, egress?: EgressPolicy) => string
  policies: PolicyTable
  /** The rules of gVisor sandboxes, on the host side of their veths. */
  gvisorNetwork: GvisorNetwork
}

/** The templates directory: configured, or under the data directory. */
export function templatesDirOf(cfg: OrchestratorConfig): string {
  return cfg.templatesDir ?? join(cfg.dataDir, 'templates')
}

export function containerId(cfg: OrchestratorConfig, sandboxId: string): string {
  return `${cfg.prefix}-${sandboxId}`
}

/** cgroup path of a sandbox (created by runc under every v1 controller, or in v2). */
export function cgroupsPath(cfg: OrchestratorConfig, sandboxId: string): string {
  return `/warren/${cfg.prefix}/${sandboxId}`
}
