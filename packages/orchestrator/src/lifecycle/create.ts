import {
  type NetworkConfig,
  parseBuildId,
  parseNetworkConfig,
  parseSandboxId,
  parseTemplateId,
  WarrenError,
} from '@warren/shared'
import type { CreateSpec, NodeHost } from '../host/node-host.js'

export interface CreateInput {
  sandboxId: string
  templateId: string
  /** A build of the template (a tag's); default: its current build. */
  buildId?: string
  cpuCount?: number
  memoryMb?: number
  diskSizeMb?: number
  envVars?: Record<string, string>
  envdAccessToken?: string
  network?: NetworkConfig
  allowInternetAccess?: boolean | null
}

const MIN_MEMORY_MB = 64

/**
 * What a create asks of the host, with the template's defaults filled in.
 * Everything is validated here, before the node reserves anything.
 */
export function createSpec(host: NodeHost, input: CreateInput): CreateSpec {
  parseSandboxId(input.sandboxId)
  const template = host.template(
    parseTemplateId(input.templateId),
    input.buildId === undefined ? undefined : parseBuildId(input.buildId),
  )
  const network = input.network ?? {}
  const allowInternetAccess = input.allowInternetAccess ?? null
  const policy = parseNetworkConfig(network, allowInternetAccess)
  const cpuCount = input.cpuCount || template.cpuCount
  const memoryMb = input.memoryMb || template.memoryMB
  if (cpuCount > host.cpuCount) {
    throw new WarrenError(
      'invalid_argument',
      `cpuCount ${cpuCount} exceeds this node's ${host.cpuCount} CPUs`,
    )
  }
  if (memoryMb < MIN_MEMORY_MB) {
    throw new WarrenError('invalid_argument', `memoryMB must be at least ${MIN_MEMORY_MB}`)
  }
  return {
    sandboxId: input.sandboxId,
    template,
    cpuCount,
    memoryMb,
    diskSizeMb: input.diskSizeMb || template.diskSizeMB,
    envVars: input.envVars ?? {},
    envdAccessToken: input.envdAccessToken,
    policy,
    network,
    allowInternetAccess,
  }
}
