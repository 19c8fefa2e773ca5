import { closeSync, constants, existsSync, openSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import {
  DEFAULT_ISOLATION,
  hasEgressRules,
  newSandboxId,
  parseNetworkConfig,
  WarrenError,
} from '@warren/shared'
import { containerId, type NodeContext } from '../context.js'
import { run } from '../exec.js'
import type { CreateSpec, WarmSandbox } from '../host/node-host.js'
import type { NetworkSlot } from '../network/slots.js'
import type { TemplateMetadata } from '../templates/metadata.js'
import { applyEgressRules, identityFiles, initSandboxEnvd } from './boot.js'
import { asStartError, createSandbox, newRecord } from './create.js'
import { destroySandbox } from './destroy.js'
import { processAlive, processIdentity } from './process-probe.js'
import { type SandboxRecord, sandboxPaths, writeRecord } from './record.js'

/** `warm-` and 15 characters: never a sandbox id (20 lowercase alphanumerics). */
export function newWarmName(): string {
  return `warm-${newSandboxId().slice(0, 15)}`
}

/**
 * Boots a sandbox of the template with its defaults and no id: everything a
 * create does but envd's /init and the record (a node start removes what has
 * no record, so warm sandboxes never outlive their node process).
 */
export async function startWarm(
  ctx: NodeContext,
  template: TemplateMetadata,
): Promise<WarmSandbox> {
  const name = newWarmName()
  const network = {}
  const { slot } = await createSandbox(
    ctx,
    {
      sandboxId: name,
      template,
      cpuCount: template.cpuCount,
      memoryMb: template.memoryMB,
      diskSizeMb: template.diskSizeMB,
      envVars: {},
      envdAccessToken: undefined,
      trafficAccessToken: undefined,
      policy: parseNetworkConfig(network, null),
      network,
      allowInternetAccess: null,
      volumeMounts: [],
      isolation: DEFAULT_ISOLATION,
    },
    { warm: true },
  )
  // Found once here, so a claim needs no `runc state`.
  const state = await ctx.runc.state(containerId(ctx.cfg, name))
  const init = state?.pid ? processIdentity(state.pid) : undefined
  return {
    name,
    ...(init ? { init } : {}),
    templateId: template.templateId,
    buildId: template.buildId,
    cpuCount: template.cpuCount,
    memoryMb: template.memoryMB,
    diskSizeMb: template.diskSizeMB,
    slot,
  }
}

/**
 * Makes a warm sandbox the create's. Its directory is renamed to the id (the
 * mounts under it move along), so every path lookup by id finds it; its
 * container and cgroup keep the warm name, which the record's `hostName`
 * carries. Then: the identity files and the UTS hostname (from the host,
 * in its UTS namespace), the create's egress rules, envd's token and
 * environment, and last the record. Any failure destroys the warm sandbox.
 */
export async function claimWarm(
  ctx: NodeContext,
  warm: WarmSandbox,
  spec: CreateSpec,
): Promise<{ record: SandboxRecord; slot: NetworkSlot }> {
  const { cfg } = ctx
  let dirName = warm.name
  try {
    const to = sandboxPaths(cfg.dataDir, spec.sandboxId)
    if (existsSync(to.dir))
      throw new WarrenError('already_exists', `sandbox ${spec.sandboxId} already has files here`)
    renameSync(sandboxPaths(cfg.dataDir, warm.name).dir, to.dir)
    dirName = spec.sandboxId
    rewriteIdentity(to.upper, spec.sandboxId, warm.slot)
    // Its first process, still the same one (start time): a reused pid is never entered.
    if (!warm.init || !processAlive(warm.init))
      throw new WarrenError('internal', `warm sandbox ${warm.name} has no first process`)
    // Independent steps, all done before the create answers (no code of the user's runs before).
    await Promise.all([
      run('nsenter', [`--target=${warm.init.pid}`, '--uts', 'hostname', spec.sandboxId], {
        timeoutMs: 5000,
      }),
      hasEgressRules(spec.policy.egress)
        ? applyEgressRules(ctx, warm.slot, spec.policy.egress)
        : undefined,
      initSandboxEnvd(ctx, spec, warm.slot),
    ])
    const record = newRecord(ctx, spec, warm.slot, warm.name)
    writeRecord(cfg.dataDir, record)
    return { record, slot: warm.slot }
  } catch (err) {
    for (const e of await destroySandbox(ctx, dirName, warm.slot, warm.name))
      ctx.log.error({ err: e, sandboxId: spec.sandboxId, warm: warm.name }, 'rollback step failed')
    throw asStartError(err)
  }
}

export function destroyWarm(ctx: NodeContext, warm: WarmSandbox): Promise<Error[]> {
  return destroySandbox(ctx, warm.name, warm.slot, warm.name)
}

/**
 * Rewrites /etc/hostname and /etc/hosts in place in the writable layer (the
 * same inodes the mounted overlay shows; the boot wrote them as regular
 * files, and no code of the user's has run yet). O_NOFOLLOW: never a link.
 */
function rewriteIdentity(upper: string, sandboxId: string, slot: NetworkSlot): void {
  const files = identityFiles(sandboxId, slot)
  for (const name of ['hostname', 'hosts'] as const) {
    const fd = openSync(
      join(upper, 'etc', name),
      constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW,
    )
    try {
      writeSync(fd, files[name] as string)
    } finally {
      closeSync(fd)
    }
  }
}
