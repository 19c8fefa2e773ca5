import { existsSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import type { Logger, OrchestratorConfig } from '@warren/shared'
import { cgroupsPath, type NodeContext, templatesDirOf } from '../context.js'
import { releaseEnvdStore } from '../envd-bundle.js'
import { AddressPool } from '../network/address-pool.js'
import { cutDeniedFlows } from '../network/conntrack.js'
import { GvisorNetwork } from '../network/gvisor.js'
import { LinkGso } from '../network/link-gso.js'
import { netnsNames } from '../network/netns.js'
import { removeHostTable } from '../network/nftables.js'
import { NodeNetwork } from '../network/services.js'
import { NetworkSlots } from '../network/slots.js'
import { diskUsage } from '../runtime/disk.js'
import { mountsUnder } from '../runtime/overlay.js'
import { Runc } from '../runtime/runc.js'
import { detectRuntimes, Runtimes } from '../runtime/runtimes.js'
import { applyEgressRules } from '../sandboxes/boot.js'
import { createSandbox } from '../sandboxes/create.js'
import { cutOff } from '../sandboxes/cut-off.js'
import { destroySandbox } from '../sandboxes/destroy.js'
import { watchInit } from '../sandboxes/init-watch.js'
import { readLogLines } from '../sandboxes/logs.js'
import { MetricsSampler, readCgroup, readSandboxFigures } from '../sandboxes/metrics.js'
import { dropToFiles, freeze } from '../sandboxes/pause.js'
import { hostNameOf, sandboxPaths, writeRecord } from '../sandboxes/record.js'
import { bootFromFiles, thaw } from '../sandboxes/resume.js'
import { snapshotSandbox } from '../sandboxes/snapshot.js'
import { claimWarm, destroyWarm, startWarm } from '../sandboxes/warm.js'
import { deleteTemplate, removeBuilds } from '../templates/gc.js'
import { TemplateRegistry } from '../templates/registry.js'
import { runBuild } from '../templates/run-build.js'
import { withTemplateCommands } from '../templates/sandbox-start.js'
import { installSandbox, packSandbox } from '../transfer/sandbox-bundle.js'
import { installTemplate, packTemplate } from '../transfer/template-bundle.js'
import { createVolumeDisk, deleteVolumeDisk, unmountVolumes } from '../volumes/storage.js'
import type { NodeHost } from './node-host.js'
import { startHost } from './start.js'

/** The machine host, with the parts a benchmark may instrument. */
export type MachineHost = NodeHost & { readonly slots: NetworkSlots; readonly runc: Runc }

/**
 * The node's host as it really is: runc containers, overlay mounts, network
 * namespaces with nftables, Warren's DNS and egress proxy, files under the
 * data directory.
 */
export function createMachineHost(cfg: OrchestratorConfig, log: Logger): MachineHost {
  const templatesDir = templatesDirOf(cfg)
  const pool = new AddressPool(cfg.addressPool)
  const network = new NodeNetwork(cfg, log)
  const linkGso = new LinkGso(cfg.sandboxGsoMaxSize, log)
  const slots = new NetworkSlots({
    prefix: cfg.prefix,
    pool,
    target: cfg.warmNetworkSlots,
    linkGso,
    log,
    baseTable: (slot) => network.tableFor(slot),
  })
  const runc = new Runc(join(cfg.dataDir, 'runc'))
  const ctx: NodeContext = {
    cfg,
    templatesDir,
    log,
    runc,
    // runsc is looked for at start (it takes a trial sandbox).
    runtimes: new Runtimes(runc, undefined, ['runc']),
    gvisorNetwork: new GvisorNetwork(cfg.prefix, network.tableSpec, linkGso),
    templates: new TemplateRegistry(templatesDir),
    pool,
    slots,
    envd: undefined,
    lxcfs: undefined,
    tableFor: network.tableFor,
    policies: network.policies,
  }
  const metrics = new MetricsSampler()
  const cgroupOf = (sandboxId: string) => cgroupsPath(cfg, hostNameOf(cfg.dataDir, sandboxId))
  let release: (() => Promise<void>) | undefined

  return {
    cpuCount: cpus().length,
    policies: network.policies,
    slots,
    runc: ctx.runc,
    envdVersion: () => ctx.envd?.version,
    addressesFree: () => pool.free,
    isolations: () => ctx.runtimes.offered,

    async start() {
      ctx.runtimes = await detectRuntimes(cfg, runc, log)
      const started = await startHost(ctx, network)
      release = started.release
      slots.fill()
      return { adopted: started.adopted, removed: started.removed, volumes: started.volumes }
    },
    async stop({ idle }) {
      await slots.stop()
      await release?.()
      release = undefined
      if (idle) {
        await releaseEnvdStore(cfg)
        // Sandboxes hold volumes through their own bind mounts; with none
        // left the host's mounts go too (the next start mounts them again).
        await unmountVolumes(cfg)
        // Its rules guard sandboxes' veths; with none left they go (start makes them again).
        await removeHostTable(cfg.prefix)
      }
    },

    template: (templateId, buildId) =>
      buildId ? ctx.templates.build(templateId, buildId) : ctx.templates.get(templateId),
    templates: () => ctx.templates.list(),
    buildTemplate: (spec, log, signal) => runBuild(ctx, spec, log, signal),
    deleteTemplate: (templateId, inUse) => deleteTemplate(templatesDir, templateId, inUse),
    removeBuilds: (templateId, buildIds) => removeBuilds(templatesDir, templateId, buildIds),

    create: (spec) =>
      withTemplateCommands(ctx, spec.template, spec.envdAccessToken, () =>
        createSandbox(ctx, spec),
      ),
    async cutOff(record) {
      if (!(await cutOff(ctx, record))) return false
      metrics.forget(record.sandboxId)
      network.policies.remove(record.sandboxId)
      network.enforce(record.sandboxId)
      return true
    },
    startWarm: (template) => startWarm(ctx, template),
    claimWarm: (warm, spec) =>
      withTemplateCommands(ctx, spec.template, spec.envdAccessToken, () =>
        claimWarm(ctx, warm, spec),
      ),
    destroyWarm: (warm) => destroyWarm(ctx, warm),
    async destroy(sandboxId, slot) {
      const errors = await destroySandbox(ctx, sandboxId, slot)
      metrics.forget(sandboxId)
      network.policies.remove(sandboxId)
      network.enforce(sandboxId)
      return errors
    },
    freeze: (sandboxId) => freeze(ctx, sandboxId),
    thaw: (record) => thaw(ctx, record),
    dropToFiles: (sandboxId, slot, saveProcesses) =>
      dropToFiles(ctx, sandboxId, slot, saveProcesses),
    bootFromFiles: (paused, input, policy) =>
      withTemplateCommands(
        ctx,
        ctx.templates.build(paused.templateId, paused.buildId),
        input.envdAccessToken,
        () => bootFromFiles(ctx, paused, input, policy),
        { resume: true },
      ),
    applyEgress: (slot, egress) => applyEgressRules(ctx, slot, egress),
    async cutDeniedFlows(sandboxId, slot) {
      network.enforce(sandboxId)
      if (!slot) return
      await cutDeniedFlows(
        ctx.gvisorNetwork.has(slot) ? undefined : slot.netns,
        slot.sandboxIp,
        slot.hostIp,
        network.policies.get(sandboxId)?.egress,
      )
    },
    snapshot: (record, templateId, envdAccessToken) =>
      snapshotSandbox(ctx, record, templateId, envdAccessToken),
    saveRecord: (record) => writeRecord(cfg.dataDir, record),
    packSnapshot: (record, store) => packSandbox(ctx, record, store),
    installSnapshot: (manifest, store) => installSandbox(ctx, manifest, store),
    packTemplate: (meta, need, store) => packTemplate(templatesDir, meta, need, store),
    installTemplate: (manifest, store) => installTemplate(templatesDir, manifest, store),
    layersHeld: (paths) => paths.filter((p) => existsSync(join(templatesDir, p))),
    diskUsed(r) {
      const disk = sandboxPaths(cfg.dataDir, r.sandboxId).disk
      return mountsUnder(disk).includes(disk) ? diskUsage(disk).usedBytes : undefined
    },
    memoryInUse: (sandboxId) => readCgroup(cgroupOf(sandboxId)).memUsed,
    watchInit: (sandboxId) => watchInit(ctx, sandboxId),
    sampleMetrics: (r) =>
      metrics.sample(
        r.sandboxId,
        cgroupsPath(cfg, r.hostName ?? r.sandboxId),
        diskUsage(sandboxPaths(cfg.dataDir, r.sandboxId).disk),
        { cpuCount: r.cpuCount, memoryMb: r.memoryMb, startedAt: Date.parse(r.startedAt) },
      ),
    figures: (r) =>
      readSandboxFigures(
        cgroupsPath(cfg, r.hostName ?? r.sandboxId),
        diskUsage(sandboxPaths(cfg.dataDir, r.sandboxId).disk),
        r.slotIndex === null ? undefined : netnsNames(cfg.prefix, r.slotIndex).hostIf,
        r.memoryMb,
      ),
    readySlots: () => slots.ready,
    logs: (sandboxId, startMs, limit) =>
      readLogLines(sandboxPaths(cfg.dataDir, sandboxId).log, startMs, limit),
    createVolume: (record) => createVolumeDisk(cfg, record, log),
    deleteVolume: (volumeId) => deleteVolumeDisk(cfg, volumeId),
  }
}
