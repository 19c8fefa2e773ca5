import { rmSync } from 'node:fs'
import { containerId, type NodeContext } from '../context.js'
import type { NetworkSlot } from '../network/slots.js'
import { mountsUnder, unmountAll } from '../runtime/overlay.js'
import { hostNameOf, sandboxPaths } from './record.js'

/** Removes a sandbox's directory, never recursing into a tree that still has something mounted. */
export function removeSandboxDir(dir: string): void {
  const left = mountsUnder(dir)
  if (left.length) throw new Error(`still mounted: ${left.join(', ')}`)
  rmSync(dir, { recursive: true, force: true })
}

/**
 * A sandbox's files, its record first: a crash halfway through leaves a
 * directory without one, which the next start removes as debris (never, say,
 * a paused sandbox's record without its tearing-down mark, kept as a snapshot).
 */
function removeSandboxFiles(paths: ReturnType<typeof sandboxPaths>): void {
  const left = mountsUnder(paths.dir)
  if (left.length) throw new Error(`still mounted: ${left.join(', ')}`)
  rmSync(paths.record, { force: true })
  removeSandboxDir(paths.dir)
}

/**
 * Removes everything a sandbox had: processes and cgroups (runc), mounts,
 * the sandbox directory with its writable layer, then its network. Every step
 * runs even when an earlier one failed; the failures are returned together.
 * Anything left by a crash halfway is debris that reconciliation removes.
 */
export async function destroySandbox(
  ctx: NodeContext,
  sandboxId: string,
  slot: NetworkSlot | undefined,
  hostName = hostNameOf(ctx.cfg.dataDir, sandboxId),
): Promise<Error[]> {
  const paths = sandboxPaths(ctx.cfg.dataDir, sandboxId)
  const errors: Error[] = []
  const step = async (name: string, fn: () => unknown) => {
    try {
      await fn()
    } catch (err) {
      errors.push(new Error(`${name}: ${(err as Error).message}`, { cause: err }))
    }
  }
  // Every runtime of the node: its record (which names the runtime) may be gone.
  for (const runtime of ctx.runtimes.all())
    await step(`container (${runtime.isolation})`, () =>
      runtime.destroy(containerId(ctx.cfg, hostName)),
    )
  await step('mounts', () => unmountAll(paths.dir))
  await step('files', () => removeSandboxFiles(paths))
  if (slot) {
    await step('gVisor network rules', () => ctx.gvisorNetwork.detach(slot))
    await step('network', () => ctx.slots.release(slot))
  }
  return errors
}
