import { existsSync, writeFileSync } from 'node:fs'
import { cgroupsPath, type NodeContext } from '../context.js'
import { killCgroup } from '../runtime/cgroup-kill.js'
import { type SandboxRecord, sandboxPaths } from './record.js'

/**
 * The part of a kill the caller waits for: the sandbox is marked as tearing
 * down on disk, then every process of it is killed. Its mounts, network and
 * files stay for `destroySandbox`, run in the background; a node that dies
 * before that finishes finds the mark at its next start and removes the
 * sandbox instead of adopting it (see reconcile).
 *
 * Returns false, having changed nothing but the mark, when the fast path
 * does not apply: a gVisor sandbox (its sentry and gofer are runsc's to
 * stop; the node tears it down while the caller waits), or processes that
 * outlived the wait. The caller then destroys the sandbox synchronously.
 *
 * The mark is a plain write, not fsynced: it is for a crash of the node's
 * process, after which the kernel still has it; a crash of the machine ends
 * the sandbox's processes anyway, and the next start finds it stopped.
 */
export async function cutOff(ctx: NodeContext, record: SandboxRecord): Promise<boolean> {
  const paths = sandboxPaths(ctx.cfg.dataDir, record.sandboxId)
  if (!existsSync(paths.dir)) return false
  writeFileSync(paths.tearingDown, '', { mode: 0o600 })
  if (record.isolation !== 'runc') return false
  // A sandbox claimed warm keeps its warm name for its cgroup (see `hostName`).
  return killCgroup(cgroupsPath(ctx.cfg, record.hostName ?? record.sandboxId))
}

/** A kill answered before this sandbox's teardown finished: it must not be adopted. */
export function isTearingDown(dataDir: string, sandboxId: string): boolean {
  return existsSync(sandboxPaths(dataDir, sandboxId).tearingDown)
}
