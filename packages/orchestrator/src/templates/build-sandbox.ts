import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { newSandboxId, newToken, parseNetworkConfig } from '@warren/shared'
import { containerId, type NodeContext } from '../context.js'
import type { NetworkSlot } from '../network/slots.js'
import { unmount } from '../runtime/overlay.js'
import { createSandbox } from '../sandboxes/create.js'
import { destroySandbox } from '../sandboxes/destroy.js'
import { sandboxPaths } from '../sandboxes/record.js'
import type { EnvdTarget } from './envd-client.js'
import { commitLayer } from './layer-store.js'
import type { TemplateMetadata } from './metadata.js'

export interface BuildSandboxSpec {
  template: TemplateMetadata
  cpuCount: number
  memoryMb: number
  diskSizeMb: number
}

/**
 * A sandbox a build runs one step in: an ordinary sandbox of the build's
 * cpu and memory, with the default network policy (internet yes, host and
 * private ranges no), its own access token, and no place in the node's
 * sandbox table (the API never sees it). A node restart removes it as
 * debris once its build has ended.
 */
export class BuildSandbox {
  private constructor(
    private readonly ctx: NodeContext,
    readonly sandboxId: string,
    private readonly slot: NetworkSlot,
    readonly target: EnvdTarget,
  ) {}

  static async start(ctx: NodeContext, spec: BuildSandboxSpec): Promise<BuildSandbox> {
    const sandboxId = newSandboxId()
    const accessToken = newToken()
    const policy = parseNetworkConfig({}, null)
    const { slot } = await createSandbox(ctx, {
      sandboxId,
      template: spec.template,
      cpuCount: spec.cpuCount,
      memoryMb: spec.memoryMb,
      diskSizeMb: spec.diskSizeMb,
      envVars: {},
      envdAccessToken: accessToken,
      trafficAccessToken: undefined,
      policy,
      network: {},
      allowInternetAccess: null,
      volumeMounts: [],
      // Builds run under runc: their layers are the same whatever runs them later.
      isolation: 'runc',
    })
    // Warren's DNS and egress proxy answer only sandboxes they know by address.
    ctx.policies.set(sandboxId, slot.sandboxIp, policy)
    return new BuildSandbox(ctx, sandboxId, slot, {
      host: slot.sandboxIp,
      port: ctx.cfg.readyPort,
      accessToken,
    })
  }

  /**
   * Stops every process, then makes a layer of what the step wrote: the
   * writable layer without the files that only name this sandbox.
   * Undefined when the step wrote nothing.
   */
  async commit(): Promise<string | undefined> {
    const paths = sandboxPaths(this.ctx.cfg.dataDir, this.sandboxId)
    await this.ctx.runc.destroy(containerId(this.ctx.cfg, this.sandboxId))
    await unmount(paths.rootfs)
    stripIdentity(paths.upper)
    if (readdirSync(paths.upper).length === 0) return undefined
    return commitLayer(this.ctx.templatesDir, paths.upper)
  }

  async destroy(): Promise<void> {
    this.ctx.policies.remove(this.sandboxId)
    const errors = await destroySandbox(this.ctx, this.sandboxId, this.slot)
    for (const err of errors)
      this.ctx.log.error({ err, sandboxId: this.sandboxId }, 'build sandbox cleanup failed')
  }
}

/** Runs `fn` in a fresh build sandbox that is always removed afterwards. */
export async function inBuildSandbox<T>(
  ctx: NodeContext,
  spec: BuildSandboxSpec,
  fn: (sandbox: BuildSandbox) => Promise<T>,
): Promise<T> {
  const sandbox = await BuildSandbox.start(ctx, spec)
  try {
    return await fn(sandbox)
  } finally {
    await sandbox.destroy()
  }
}

/** The files boot writes into every writable layer (see boot.ts writeIdentity). */
const IDENTITY = ['hostname', 'hosts', 'resolv.conf']

function stripIdentity(upper: string): void {
  const etc = join(upper, 'etc')
  if (!existsSync(etc)) return
  for (const name of IDENTITY) rmSync(join(etc, name), { force: true })
  if (readdirSync(etc).length === 0) rmdirSync(etc)
}
