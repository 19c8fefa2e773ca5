import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CleanupStack, type OrchestratorConfig, WarrenError } from '@warren/shared'
import type { NodeContext } from '../context.js'
import { envdDirOf, installEnvd, mountEnvdStore, pruneEnvd } from '../envd-bundle.js'
import { acquireDirLock } from '../host-lock.js'
import { hostIpv4Addresses } from '../network/netns.js'
import { applyOnHost, renderHostTable } from '../network/nftables.js'
import { checkPoolIsFree } from '../network/pool-check.js'
import { claimPool } from '../network/pool-claim.js'
import type { NodeNetwork } from '../network/services.js'
import { releaseLoopDevices } from '../runtime/disk.js'
import { ensureHostLimits } from '../runtime/host-limits.js'
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
    // One node per data directory, whatever its prefix: reconciliation
    // removes every sandbox directory it cannot adopt, and the runc state,
    // envd store and volumes below it are one node's.
    const unlock = await acquireDirLock(cfg.dataDir, '.node.lock', 'data directory')
    taken.push('data directory lock', unlock)
    // Another node's sandboxes (or a host network) in this pool would get
    // the same addresses and routes as ours.
    // …and no other running node of this machine has the prefix or a pool
    // overlapping it, sandboxes or not.
    taken.push('address pool claim', await claimPool(cfg.prefix, cfg.addressPool))
    await checkPoolIsFree(cfg.addressPool, cfg.prefix)
    if (!cfg.sandboxCommand) await mountEnvdStore(cfg)
    ctx.envd = cfg.sandboxCommand ? undefined : installEnvd(cfg)
    ctx.lxcfs = await ensureLxcfs(log)
    // Sandboxes reach the world through this host: it must route.
    writeFileSync('/proc/sys/net/ipv4/ip_forward', '1')
    ensureHostLimits(log)
    await applyOnHost(
      renderHostTable({
        prefix: cfg.prefix,
        pool: cfg.addressPool,
        services: network.servicePorts,
      }),
    )
    taken.push('dns and egress proxy', () => network.stop())
    await network.start(await hostIpv4Addresses()).catch((err: unknown) => {
      throw servicePortTaken(err, cfg)
    })

    const loops = await releaseLoopDevices(cfg.dataDir)
    if (loops) log.info({ loops }, 'loop devices of the data directory let go')
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

/**
 * Warren's DNS and egress proxy listen on the host's ports: a second node on
 * the machine with the same ones fails here, and should say how to fix it.
 */
function servicePortTaken(err: unknown, cfg: OrchestratorConfig): unknown {
  if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') return err
  return new WarrenError(
    'conflict',
    `a port of this node's DNS or egress proxy is in use (WARREN_DNS_PORT ${cfg.dnsPort}, WARREN_EGRESS_HTTP_PORT ${cfg.egressHttpPort}, WARREN_EGRESS_TLS_PORT ${cfg.egressTlsPort}): another node on this machine? Give each node its own ports`,
    { cause: err },
  )
}
