import { type NetworkConfig, type NetworkPolicy, WarrenError } from '@warren/shared'
import type { SandboxRecord } from '../sandboxes/record.js'
import { type NodeState, policyInForce, type Settled } from './entries.js'

/**
 * Replaces the network rules of a running sandbox (under its lock). The old
 * and the new policy both apply while the kernel rules switch in one nft
 * transaction (so nothing is looser than either at any moment); a failure
 * restores the old ones and changes nothing. Then flows the new rules deny
 * are cut.
 */
export async function updateNetwork(
  node: NodeState,
  entry: Settled,
  change: { network: NetworkConfig; allowInternetAccess: boolean | null; policy: NetworkPolicy },
): Promise<SandboxRecord> {
  const { host } = node
  const { network, allowInternetAccess, policy } = change
  const sandboxId = entry.record.sandboxId
  if (entry.state !== 'running' || !entry.slot) {
    throw new WarrenError('conflict', `sandbox ${sandboxId} is ${entry.state}`)
  }
  const slot = entry.slot
  const old = policyInForce(host, entry.record)
  host.policies.set(sandboxId, slot.sandboxIp, old, policy)
  try {
    await host.applyEgress(slot, policy.egress)
  } catch (err) {
    host.policies.set(sandboxId, slot.sandboxIp, old)
    throw new WarrenError(
      'internal',
      `could not apply the network rules: ${(err as Error).message}`,
      { cause: err },
    )
  }
  const updated: SandboxRecord = { ...entry.record, network: { ...network }, allowInternetAccess }
  host.saveRecord(updated)
  host.policies.set(sandboxId, slot.sandboxIp, policy)
  node.set(sandboxId, { ...entry, record: updated })
  await host
    .cutDeniedFlows(sandboxId, slot)
    .catch((err) => node.log.warn({ err, sandboxId }, 'could not cut denied flows'))
  return updated
}
