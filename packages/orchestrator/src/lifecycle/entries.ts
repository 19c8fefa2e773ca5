import { type Logger, type NetworkPolicy, parseNetworkConfig } from '@warren/shared'
import type { NodeHost } from '../host/node-host.js'
import type { NetworkSlot } from '../network/slots.js'
import type { SandboxRecord } from '../sandboxes/record.js'

/**
 * A sandbox the node knows. `creating` reserves the id and its memory; a
 * sandbox paused to files only holds no network slot.
 */
export type Entry =
  | { state: 'creating' }
  | {
      state: 'running' | 'paused'
      record: SandboxRecord
      slot: NetworkSlot | undefined
      /** Memory a frozen sandbox holds, measured when it was frozen. */
      frozenBytes?: number
      /**
       * Its container died on its own (first process exited, OOM): reported
       * to the control plane until it has the sandbox killed; refused traffic.
       */
      exited?: Exit
    }

/** When and how a sandbox's container died on its own. */
export interface Exit {
  at: string
  detail: string
  /** The kernel killed it for its memory. */
  oom?: boolean
}

export type Settled = Extract<Entry, { record: SandboxRecord }>

/**
 * What the node's operations (resume, network update, frozen budget) may see
 * and change of the node: its table and memory ledger, always under the
 * sandbox's lock.
 */
export interface NodeState {
  readonly host: NodeHost
  readonly log: Logger
  /** The entry of a sandbox that is not being created; not_found otherwise. */
  settled(sandboxId: string): Settled
  /** The entry of a settled sandbox, if the node has it. */
  find(sandboxId: string): Settled | undefined
  /** Every settled sandbox of the node. */
  all(): Settled[]
  /** Runs `fn` after every earlier operation on this sandbox has finished. */
  locked<T>(sandboxId: string, fn: () => Promise<T>): Promise<T>
  set(sandboxId: string, entry: Settled): void
  /** The sandbox is gone from the node. */
  forget(sandboxId: string): void
  /** Takes memory from the node's capacity; capacity_exhausted when it does not fit. */
  reserveMemory(memoryMb: number): void
  releaseMemory(memoryMb: number): void
}

/** Running and frozen sandboxes hold their memory; a files-only snapshot does not. */
export function holdsMemory(r: SandboxRecord): boolean {
  return r.state === 'running' || r.pausedKind === 'memory'
}

export function withoutPause(r: SandboxRecord): SandboxRecord {
  const { pausedKind: _k, pausedAt: _a, ...rest } = r
  return { ...rest, state: 'running' }
}

/** The policy a record's network config stands for (validated when it was accepted). */
export function policyOf(r: SandboxRecord): NetworkPolicy {
  return parseNetworkConfig(r.network, r.allowInternetAccess)
}

/** A settled sandbox's policy: the one in force, parsed when it was set. */
export function policyInForce(host: NodeHost, r: SandboxRecord): NetworkPolicy {
  return host.policies.get(r.sandboxId) ?? policyOf(r)
}

/**
 * Drops a frozen or running sandbox to a files-only snapshot (under its
 * lock): its memory and network go back to the node. The record says
 * "paused, files" before anything is dropped: a crash in the middle then
 * leaves a snapshot the next start finishes dropping, never a running
 * sandbox without its processes (which the start would remove as debris,
 * files and all). A drop that fails puts the record back.
 */
export async function toFiles(
  node: NodeState,
  entry: Settled,
  pausedAt: string,
  /** Save a frozen gVisor sandbox's processes with its files (a move, the frozen budget). */
  saveProcesses = false,
): Promise<SandboxRecord> {
  const sandboxId = entry.record.sandboxId
  const files: SandboxRecord = {
    ...entry.record,
    state: 'paused',
    pausedKind: 'files',
    pausedAt,
    slotIndex: null,
    sandboxIp: null,
    hostIp: null,
  }
  node.host.saveRecord(files)
  try {
    const save = saveProcesses && entry.state === 'paused' ? entry.record : undefined
    if (await node.host.dropToFiles(sandboxId, entry.slot, save)) {
      files.checkpointed = true
      node.host.saveRecord(files)
    }
  } catch (err) {
    node.host.saveRecord(entry.record)
    throw err
  }
  if (holdsMemory(entry.record)) node.releaseMemory(entry.record.memoryMb)
  node.host.policies.set(sandboxId, undefined, policyInForce(node.host, files))
  node.set(sandboxId, { state: 'paused', record: files, slot: undefined })
  return files
}
