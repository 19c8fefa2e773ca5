import type { Sandbox, SandboxPatch } from '../store/sandbox-row.js'
import type { SandboxState } from '../store/schema.js'

export const EVENT_KINDS = [
  'created',
  'paused',
  'resumed',
  'killed',
  'timeout_changed',
  'network_updated',
] as const

export type EventKind = (typeof EVENT_KINDS)[number]

export function isEventKind(v: string): v is EventKind {
  return (EVENT_KINDS as readonly string[]).includes(v)
}

/**
 * Which event a compare-and-set records, from the states it moves from and
 * what it sets. Only settled changes are events: `creating → running` is a
 * create and `resuming → running` a resume, but `pausing → running` (a
 * failed pause rolled back) or `killing → paused` (a kill that could not
 * reach the node) change nothing a caller asked for. Every tombstone is a
 * kill, whatever led to it; its reason says why.
 */
export function eventKindOf(
  from: readonly SandboxState[],
  patch: SandboxPatch,
): EventKind | undefined {
  const only = (s: SandboxState) => from.length > 0 && from.every((f) => f === s)
  switch (patch.state) {
    case 'running':
      if (only('creating')) return 'created'
      return only('resuming') ? 'resumed' : undefined
    case 'paused':
      return only('pausing') ? 'paused' : undefined
    case 'killed':
      return 'killed'
    case undefined:
      if (patch.network !== undefined) return 'network_updated'
      if (patch.endAt !== undefined && only('running')) return 'timeout_changed'
      return undefined
    default:
      return undefined
  }
}

/** What an event says beyond its kind, taken from the sandbox as the change left it. */
export function eventData(kind: EventKind, s: Sandbox): Record<string, unknown> {
  const endAt = new Date(s.endAt).toISOString()
  switch (kind) {
    case 'created':
      return { endAt, cpuCount: s.cpuCount, memoryMB: s.memoryMb, nodeId: s.nodeId }
    case 'paused':
      return { pausedKind: s.pausedKind }
    case 'resumed':
      return { resumedFrom: s.resumedFrom, endAt }
    case 'killed':
      return { reason: s.killReason }
    case 'timeout_changed':
      return { endAt }
    case 'network_updated':
      return { network: s.network, allowInternetAccess: s.allowInternetAccess }
  }
}
