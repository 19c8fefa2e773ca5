import { timestampFromMs } from '@bufbuild/protobuf/wkt'
import type { ServiceImpl } from '@connectrpc/connect'
import { networkConfigFromMessage } from '@warren/shared'
import type { OrchestratorService } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { NodeStatusInit } from '../cluster/status.js'
import type { SandboxNode } from '../node.js'
import { buildTemplateEvents } from './build-template.js'
import { pausedKindOf, toSandboxMessage, toTemplateMessage } from './convert.js'

/** The orchestrator RPC API over one node. Validation happens in SandboxNode. */
export function orchestratorService(
  node: SandboxNode,
  status: () => NodeStatusInit,
): ServiceImpl<typeof OrchestratorService> {
  const nodeId = node.cfg.nodeId
  return {
    async create(req) {
      // A template this node lacks comes from a node that has it.
      await node.snapshots.ensureTemplate(req.templateId, req.buildId, req.templateSourceUrl)
      const record = await node.create({
        sandboxId: req.sandboxId,
        templateId: req.templateId,
        ...(req.buildId !== undefined ? { buildId: req.buildId } : {}),
        cpuCount: req.cpuCount,
        memoryMb: req.memoryMb,
        diskSizeMb: req.diskSizeMb,
        envVars: req.envVars,
        ...(req.envdAccessToken !== undefined ? { envdAccessToken: req.envdAccessToken } : {}),
        ...(req.trafficAccessToken !== undefined
          ? { trafficAccessToken: req.trafficAccessToken }
          : {}),
        network: networkConfigFromMessage(req.network),
        allowInternetAccess: req.allowInternetAccess ?? null,
        volumeMounts: req.volumeMounts.map((m) => ({
          volumeId: m.volumeId,
          name: m.name,
          path: m.path,
        })),
        ...(req.isolation !== undefined ? { isolation: req.isolation } : {}),
      })
      return {
        sandbox: toSandboxMessage(record, nodeId),
        resumedFrom: pausedKindOf(record.restoredFrom),
      }
    },
    async updateNetwork(req) {
      const record = await node.updateNetwork(
        req.sandboxId,
        networkConfigFromMessage(req.network),
        req.allowInternetAccess ?? null,
      )
      return { sandbox: toSandboxMessage(record, nodeId) }
    },
    async kill(req) {
      await node.kill(req.sandboxId)
      return {}
    },
    async pause(req) {
      return {
        sandbox: toSandboxMessage(await node.pause(req.sandboxId, { memory: req.memory }), nodeId),
      }
    },
    async resume(req) {
      const { record, kind } = await node.resume(
        req.sandboxId,
        {
          envVars: req.envVars,
          ...(req.envdAccessToken !== undefined ? { envdAccessToken: req.envdAccessToken } : {}),
          ...(req.memory !== undefined ? { memory: req.memory } : {}),
        },
        req.moveFrom
          ? {
              rpcUrl: req.moveFrom.rpcUrl || undefined,
              templateSourceUrl: req.moveFrom.templateSourceUrl || undefined,
            }
          : undefined,
      )
      return { sandbox: toSandboxMessage(record, nodeId), resumedFrom: pausedKindOf(kind) }
    },
    async get(req) {
      const sandbox = toSandboxMessage(node.get(req.sandboxId), nodeId)
      const used = node.diskUsed(req.sandboxId)
      if (used !== undefined) sandbox.diskUsedBytes = BigInt(used)
      return { sandbox }
    },
    async list() {
      return { sandboxes: node.list().map((r) => toSandboxMessage(r, nodeId)) }
    },
    async nodeInfo() {
      return { status: status() }
    },
    async getMetrics(req) {
      const m = node.sampleMetrics(req.sandboxId)
      return {
        timestamp: timestampFromMs(m.timestamp),
        cpuCount: m.cpuCount,
        cpuUsedPct: m.cpuUsedPct,
        memUsed: BigInt(m.memUsed),
        memTotal: BigInt(m.memTotal),
        memCache: BigInt(m.memCache),
        diskUsed: BigInt(m.diskUsed),
        diskTotal: BigInt(m.diskTotal),
      }
    },
    async getLogs(req) {
      const lines = await node.logs(
        req.sandboxId,
        Number(req.startMs),
        Math.min(req.limit || 1000, 10_000),
      )
      return {
        lines: lines.map((l) => ({
          timestamp: timestampFromMs(l.timestamp),
          line: l.line,
          level: l.level,
          message: l.message,
          fields: l.fields,
        })),
      }
    },
    buildTemplate(req, ctx) {
      return buildTemplateEvents(node, req, ctx.signal)
    },
    async snapshot(req) {
      const meta = await node.snapshot(req.sandboxId, req.templateId, req.envdAccessToken)
      return { template: toTemplateMessage(meta, node.envdVersion()) }
    },
    async deleteTemplate(req) {
      return { layersRemoved: node.deleteTemplate(req.templateId) }
    },
    async createVolume(req) {
      await node.volumes.create({
        volumeId: req.volumeId,
        sizeMb: req.sizeMb,
        tokenSha256: req.tokenSha256,
      })
      return {}
    },
    async deleteVolume(req) {
      await node.volumes.delete(req.volumeId)
      return {}
    },
    async listTemplates() {
      return {
        templates: node.templates().map((t) => toTemplateMessage(t, node.envdVersion())),
      }
    },
  }
}
