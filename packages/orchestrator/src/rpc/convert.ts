import { create } from '@bufbuild/protobuf'
import { timestampFromDate } from '@bufbuild/protobuf/wkt'
import { networkConfigToMessage } from '@warren/shared'
import {
  PausedKind,
  type Sandbox,
  SandboxSchema,
  SandboxState,
  type Template,
  TemplateSchema,
} from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { SandboxRecord } from '../sandboxes/record.js'
import type { TemplateMetadata } from '../templates/metadata.js'

export function toSandboxMessage(r: SandboxRecord, nodeId: string): Sandbox {
  return create(SandboxSchema, {
    sandboxId: r.sandboxId,
    templateId: r.templateId,
    state: r.state === 'paused' ? SandboxState.PAUSED : SandboxState.RUNNING,
    address: r.sandboxIp ?? '',
    cpuCount: r.cpuCount,
    memoryMb: r.memoryMb,
    diskSizeMb: r.diskSizeMb,
    startedAt: timestampFromDate(new Date(r.startedAt)),
    envdVersion: r.envdVersion,
    nodeId,
    pausedKind: pausedKindOf(r.pausedKind),
    isolation: r.isolation,
    network: networkConfigToMessage(r.network),
    ...(r.allowInternetAccess !== null ? { allowInternetAccess: r.allowInternetAccess } : {}),
    ...(r.pausedAt ? { pausedAt: timestampFromDate(new Date(r.pausedAt)) } : {}),
  })
}

export function pausedKindOf(kind: 'memory' | 'files' | undefined): PausedKind {
  if (kind === 'memory') return PausedKind.MEMORY
  if (kind === 'files') return PausedKind.FILES
  return PausedKind.UNSPECIFIED
}

export function toTemplateMessage(t: TemplateMetadata, envdVersion: string | undefined): Template {
  return create(TemplateSchema, {
    templateId: t.templateId,
    buildId: t.buildId,
    cpuCount: t.cpuCount,
    memoryMb: t.memoryMB,
    diskSizeMb: t.diskSizeMB,
    defaultUser: t.defaultUser,
    defaultWorkdir: t.defaultWorkdir,
    envdVersion: envdVersion ?? t.envdVersion,
    builtAt: timestampFromDate(new Date(t.builtAt)),
  })
}
