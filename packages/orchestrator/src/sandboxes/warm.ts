import { type ChildProcess, spawn } from 'node:child_process'
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
import type { CreateSpec, WarmSandbox } from '../host/node-host.js'
import type { NetworkSlot } from '../network/slots.js'
import { runCommand } from '../templates/envd-client.js'
import type { TemplateMetadata } from '../templates/metadata.js'
import { applyEgressRules, identityFiles, initSandboxEnvd } from './boot.js'
import { asStartError, createSandbox, newRecord } from './create.js'
import { destroySandbox } from './destroy.js'
import { processAlive, processIdentity } from './process-probe.js'
import { initEnvd } from './readiness.js'
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
  // One command through envd before anyone's: its process path is then
  // compiled and loaded, which the first command of a fresh envd otherwise
  // pays (about 2-4x a later one). It leaves nothing behind.
  if (ctx.envd)
    await runCommand(
      { host: slot.sandboxIp, port: ctx.cfg.readyPort, accessToken: undefined },
      { cmd: 'true', user: template.defaultUser },
      { signal: AbortSignal.timeout(10_000) },
    ).catch((err) => ctx.log.warn({ err, warm: name }, 'warm-up command failed'))
  // Likewise envd's /init, with nothing to set.
  if (ctx.envd)
    await initEnvd(slot.sandboxIp, ctx.cfg.readyPort, {}).catch((err) =>
      ctx.log.warn({ err, warm: name }, 'warm-up init failed'),
    )
  // Found once here, so a claim needs no `runc state`.
  const state = await ctx.runc.state(containerId(ctx.cfg, name))
  const init = state?.pid ? processIdentity(state.pid) : undefined
  const warm: WarmSandbox = {
    name,
    ...(init ? { init } : {}),
    templateId: template.templateId,
    buildId: template.buildId,
    cpuCount: template.cpuCount,
    memoryMb: template.memoryMB,
    diskSizeMb: template.diskSizeMB,
    slot,
  }
  if (init) setters.set(warm, spawnHostnameSetter(init.pid))
  return warm
}

/**
 * For each warm sandbox, a shell already in its UTS namespace (entered
 * while the sandbox was started, so the claim pays no `nsenter`) that waits
 * for the id on stdin and execs `hostname` with it. It is the orchestrator's
 * child (unref'd): when the orchestrator dies it reads EOF and exits.
 */
const setters = new WeakMap<WarmSandbox, ChildProcess>()

function spawnHostnameSetter(pid: number): ChildProcess {
  const child = spawn(
    'nsenter',
    [`--target=${pid}`, '--uts', 'sh', '-c', 'read -r h && exec hostname "$h"'],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  )
  child.unref()
  child.on('error', () => {})
  return child
}

/** Names the warm sandbox's UTS namespace `hostname` through its setter. */
function setHostname(warm: WarmSandbox, hostname: string): Promise<void> {
  const child = setters.get(warm)
  setters.delete(warm)
  if (!child || child.exitCode !== null || child.signalCode !== null)
    return Promise.reject(
      new WarrenError('internal', `warm sandbox ${warm.name} has no hostname setter`),
    )
  return new Promise((resolve, reject) => {
    let stderr = ''
    child.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else reject(new WarrenError('internal', `hostname failed (${code}): ${stderr.slice(0, 200)}`))
    })
    child.stdin?.end(`${hostname}\n`)
  })
}

/** Ends a warm sandbox's hostname setter, if it still waits. */
function dropSetter(warm: WarmSandbox): void {
  setters.get(warm)?.kill('SIGKILL')
  setters.delete(warm)
}

/**
 * Makes a warm sandbox the create's. Its directory is renamed to the id (the
 * mounts under it move along), so every path lookup by id finds it; its
 * container and cgroup keep the warm name, which the record's `hostName`
 * carries. Then: the identity files and the UTS hostname (set from the
 * host by a setter waiting in its UTS namespace), the create's egress rules, envd's token and
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
      setHostname(warm, spec.sandboxId),
      hasEgressRules(spec.policy.egress)
        ? applyEgressRules(ctx, warm.slot, spec.policy.egress)
        : undefined,
      initSandboxEnvd(ctx, spec, warm.slot),
    ])
    const record = newRecord(ctx, spec, warm.slot, warm.name)
    writeRecord(cfg.dataDir, record)
    return { record, slot: warm.slot }
  } catch (err) {
    dropSetter(warm)
    for (const e of await destroySandbox(ctx, dirName, warm.slot, warm.name))
      ctx.log.error({ err: e, sandboxId: spec.sandboxId, warm: warm.name }, 'rollback step failed')
    throw asStartError(err)
  }
}

export function destroyWarm(ctx: NodeContext, warm: WarmSandbox): Promise<Error[]> {
  dropSetter(warm)
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
