import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CleanupStack } from '@warren/shared'
import type { NodeContext } from '../context.js'
import { envdDirOf, installEnvd, mountEnvdStore, pruneEnvd } from '../envd-bundle.js'
import { acquireDirLock } from '../host-lock.js'
import { hostIpv4Addresses } from '../network/netns.js'
import { applyOnHost, renderHostTable } from '../network/nftables.js'
import type { NodeNetwork } from '../network/services.js'
import { ensureLxcfs } from '../runtime/lxcfs.js'
import { reconcile } from '../sandboxes/reconcile.js'
import { protectTemplates } from '../templates/store.js'
import type { VolumeRecord } from '../volumes/record.js'
import { loadVolumes } from '../volumes/storage.js'
import type { Placed } from './node-host.js'

/**
 * Prepares the host for this node and adopts what survived its last run:
 * directories, the one-node-per-data-directory lock, envd's bundle, routing
 * and the node's host table, Warren's DNS and egress proxy, the volumes'
 * mounts (before any sandbox boots on them), then reconciliation. A failure releases what was taken (the lock, the
 * listeners) before it propagates; the host table stays, as sandboxes that
 * outlived the node still route through it.
 */
export async function startHost(
  ctx: NodeContext,
  network: NodeNetwork,
): Promise<{
  adopted: Placed[]
  removed: string[]
  volumes: { ready: VolumeRecord[]; broken: VolumeRecord[] }
  release: () => Promise<void>
}> {
  const { cfg, log } = ctx
  const taken = new CleanupStack()
  try {
    // Traversable by sandbox roots (runc reaches each rootfs as the mapped
    // uid), neither listable nor readable by anyone else.
    for (const dir of [cfg.dataDir, join(cfg.dataDir, 'sandboxes')]) {
      mkdirSync(dir, { recursive: true, mode: 0o711 })
      chmodSync(dir, 0o711)
    }
    protectTemplates(ctx.templatesDir)
    const unlock = await acquireDirLock(cfg.dataDir, `.node-${cfg.prefix}.lock`, 'data directory')
    taken.push('data directory lock', unlock)
    if (!cfg.sandboxCommand) await mountEnvdStore(cfg)
    ctx.envd = cfg.sandboxCommand ? undefined : installEnvd(cfg)
    ctx.lxcfs = await ensureLxcfs(log)
    // Sandboxes reach the world through this host: it must route.
    writeFileSync('/proc/sys/net/ipv4/ip_forward', '1')
    await applyOnHost(
      renderHostTable({
        prefix: cfg.prefix,
        pool: cfg.addressPool,
        services: network.servicePorts,
      }),
    )
    taken.push('dns and egress proxy', () => network.stop())
    await network.start(await hostIpv4Addresses())

    const volumes = await loadVolumes(cfg, log)
    const { adopted, removed } = await reconcile(ctx)
    if (ctx.envd) {
      const inUse = adopted.map((a) => envdDirOf(cfg.dataDir, a.record.sandboxId))
      pruneEnvd(cfg, new Set([ctx.envd.dir, ...inUse]))
    }
    log.info({ adopted: adopted.length, removed: removed.length }, 'node reconciled')
    const release = async () => {
      for (const err of await taken.run()) log.error({ err }, 'node stop step failed')
    }
    return { adopted, removed, volumes, release }
  } catch (err) {
    for (const e of await taken.run()) log.error({ err: e }, 'start rollback step failed')
    throw err
  }
}
