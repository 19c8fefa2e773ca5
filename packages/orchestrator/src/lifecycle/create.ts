import {
  checkVolumeMounts,
  DEFAULT_ISOLATION,
  isIsolation,
  isVolumeId,
  type NetworkConfig,
  parseBuildId,
  parseNetworkConfig,
  parseSandboxId,
  parseTemplateId,
  WarrenError,
} from '@warren/shared'
import type { CreateSpec, NodeHost } from '../host/node-host.js'
import type { VolumeMount } from '../volumes/registry.js'

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
  /** Asked of direct callers of the node proxy when public traffic is off. */
  trafficAccessToken?: string
  network?: NetworkConfig
  allowInternetAccess?: boolean | null
  volumeMounts?: VolumeMount[]
  /** 'runc' (default) or 'gvisor'. */
  isolation?: string
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
  const isolation = input.isolation || DEFAULT_ISOLATION
  if (!isIsolation(isolation))
    throw new WarrenError('invalid_argument', `unknown isolation '${isolation.slice(0, 32)}'`)
  if (!host.isolations().includes(isolation))
    throw new WarrenError('unavailable', `this node does not offer ${isolation} isolation`)
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
  const volumeMounts = checkVolumeMounts(input.volumeMounts ?? [])
  for (const m of volumeMounts) {
    if (!isVolumeId(m.volumeId))
      throw new WarrenError('invalid_argument', `invalid volume id '${m.volumeId.slice(0, 64)}'`)
  }
  if (new Set(volumeMounts.map((m) => m.volumeId)).size !== volumeMounts.length)
    throw new WarrenError('invalid_argument', 'volumeMounts: a volume is mounted twice')
  return {
    sandboxId: input.sandboxId,
    template,
    cpuCount,
    memoryMb,
    diskSizeMb: input.diskSizeMb || template.diskSizeMB,
    envVars: input.envVars ?? {},
    envdAccessToken: input.envdAccessToken,
    trafficAccessToken: input.trafficAccessToken,
    policy,
    network,
    allowInternetAccess,
    volumeMounts,
    isolation,
  }
}
