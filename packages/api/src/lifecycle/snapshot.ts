import { WarrenError } from '@warren/shared'
import type { Sandbox } from '../store/sandboxes.js'
import { insertSnapshot } from '../store/snapshots.js'
import type { Team } from '../store/teams.js'
import { newTemplateId } from '../store/templates.js'
import type { LifecycleCore } from './core.js'
import { createSandbox } from './create.js'

export interface SnapshotResult {
  snapshotId: string
  names: string[]
}

/** A fork's outcome for one new sandbox: it, or why it could not be made. */
export type ForkResult = { sandbox: Sandbox } | { error: WarrenError }

/**
 * Makes a template of a running or paused sandbox's files (the node holds
 * the sandbox still while it copies them), then records it for the team.
 * If the record cannot be made (the name was taken meanwhile), the node's
 * copy is deleted again.
 */
export async function snapshotSandbox(
  core: LifecycleCore,
  s: Sandbox,
  opts: { name?: string | undefined; kind: 'snapshot' | 'fork' },
): Promise<SnapshotResult> {
  if (s.state !== 'running' && s.state !== 'paused') {
    throw new WarrenError(
      'conflict',
      `sandbox ${s.sandboxId} is ${s.state}; try again when it settles`,
    )
  }
  const client = core.placement.node(s.nodeId).client
  const snapshotId = newTemplateId()
  const { template } = await client.snapshot({
    sandboxId: s.sandboxId,
    templateId: snapshotId,
    // Kept with a gVisor memory image: the restored envd wants it once.
    ...(s.envdAccessToken ? { envdAccessToken: s.envdAccessToken } : {}),
  })
  try {
    await insertSnapshot(core.db, {
      id: snapshotId,
      teamId: s.teamId,
      buildId: template?.buildId ?? '',
      kind: opts.kind,
      sourceSandboxId: s.sandboxId,
      name: opts.name,
      isolation: s.isolation,
      now: core.clock.now(),
    })
  } catch (err) {
    await client
      .deleteTemplate({ templateId: snapshotId })
      .catch((e: unknown) =>
        core.log.warn({ err: e, snapshotId }, 'could not remove an unrecorded snapshot'),
      )
    throw err
  }
  return { snapshotId, names: opts.name ? [opts.name] : [] }
}

/**
 * Forks a sandbox: a snapshot of its files, then `count` new sandboxes from
 * it, each with the source's settings (env vars, metadata, lifecycle,
 * network, token kind, isolation) and its own lease. Under runc processes
 * are not copied: each fork boots a fresh process tree on the files; under
 * gVisor the snapshot holds a checkpoint and each fork continues the
 * source's processes (`resumedFrom: 'memory'`). Each create succeeds or fails on its own (a team limit may
 * stop some).
 */
export async function forkSandbox(
  core: LifecycleCore,
  team: Team,
  s: Sandbox,
  opts: { timeoutS: number | undefined; count: number },
): Promise<ForkResult[]> {
  const { snapshotId } = await snapshotSandbox(core, s, { kind: 'fork' })
  return Promise.all(
    Array.from({ length: opts.count }, () =>
      createSandbox(core, team, {
        templateId: snapshotId,
        timeoutS: opts.timeoutS ?? s.timeoutS,
        metadata: s.metadata,
        envVars: s.envVars,
        secure: s.envdAccessToken !== null,
        lifecycle: s.lifecycle,
        network: s.network,
        allowInternetAccess: s.allowInternetAccess,
        // The source's volumes too: they are on its node, where the snapshot is.
        volumeMounts: s.volumeMounts,
        nodeId: s.volumeMounts.length ? s.nodeId : undefined,
        isolation: s.isolation,
        cluster: s.cluster,
      }).then(
        (sandbox): ForkResult => ({ sandbox }),
        (err: unknown): ForkResult => ({
          error: err instanceof WarrenError ? err : new WarrenError('internal', 'the fork failed'),
        }),
      ),
    ),
  )
}
