import { WarrenError } from '@warren/shared'
import type { ResumeInput } from '../host/node-host.js'
import type { SandboxRecord } from '../sandboxes/record.js'
import type { NodeSnapshots } from '../transfer/snapshots.js'
import type { NodeState } from './entries.js'
import { resumeSandbox } from './resume.js'

/**
 * Resumes here a sandbox paused on another node (under its lock, its id
 * reserved by the caller): its snapshot is fetched and unpacked as a
 * files-only sandbox of this node, then booted cold. A failure at any step
 * removes what arrived, so the node is as before and the sandbox is still
 * paused where it was (the control plane's row never left `resuming`).
 */
export async function moveIn(
  node: NodeState,
  snapshots: NodeSnapshots,
  sandboxId: string,
  from: { rpcUrl: string | undefined; templateSourceUrl?: string | undefined },
  input: ResumeInput,
): Promise<{ record: SandboxRecord; kind: 'memory' | 'files' }> {
  const record = await snapshots.bringIn(sandboxId, from.rpcUrl)
  try {
    // Its template build, from a node that has it, if this one does not.
    await snapshots.ensureTemplate(record.templateId, record.buildId, from.templateSourceUrl)
    if (record.volumeMounts.length)
      throw new WarrenError(
        'conflict',
        `sandbox ${sandboxId} mounts volumes of its own node; it cannot move`,
      )
    node.set(sandboxId, { state: 'paused', record, slot: undefined })
    return await resumeSandbox(node, node.settled(sandboxId), { ...input, memory: false })
  } catch (err) {
    node.forget(sandboxId)
    const errors = await node.host.destroy(sandboxId, undefined)
    for (const e of errors) node.log.error({ err: e, sandboxId }, 'rollback of a move failed')
    throw err
  }
}
