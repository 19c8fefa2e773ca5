import { timestampMs } from '@bufbuild/protobuf/wkt'
import { createRoute, z } from '@hono/zod-openapi'
import { isSandboxIdLike, WarrenError } from '@warren/shared'
import type { GetMetricsResponse } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { Clock } from '../../lifecycle/clock.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, sandboxIdParams } from '../params.js'

const metricSchema = z.record(z.string(), z.unknown()).openapi('SandboxMetric')

function metricView(m: GetMetricsResponse, clock: Clock) {
  const ts = m.timestamp ? timestampMs(m.timestamp) : clock.now()
  return {
    timestamp: new Date(ts).toISOString(),
    timestampUnix: Math.floor(ts / 1000),
    cpuCount: m.cpuCount,
    cpuUsedPct: Math.round(m.cpuUsedPct * 100) / 100,
    memUsed: Number(m.memUsed),
    memTotal: Number(m.memTotal),
    memCache: Number(m.memCache),
    diskUsed: Number(m.diskUsed),
    diskTotal: Number(m.diskTotal),
  }
}

const one = createRoute({
  method: 'get',
  path: '/sandboxes/{sandboxID}/metrics',
  request: {
    params: sandboxIdParams,
    query: z.strictObject({
      start: z.coerce.number().int().optional(),
      end: z.coerce.number().int().optional(),
    }),
  },
  responses: {
    200: {
      description: 'Current resource sample',
      content: { 'application/json': { schema: z.array(metricSchema) } },
    },
    ...errorResponses,
  },
})

const many = createRoute({
  method: 'get',
  path: '/sandboxes/metrics',
  request: { query: z.strictObject({ sandbox_ids: z.string() }) },
  responses: {
    200: {
      description: 'Current sample of each listed running sandbox',
      content: {
        'application/json': { schema: z.object({ sandboxes: z.record(z.string(), metricSchema) }) },
      },
    },
    ...errorResponses,
  },
})

export function registerMetrics(app: App, deps: RouteDeps): void {
  const sample = async (teamId: Parameters<typeof deps.engine.get>[0], id: string) => {
    const s = await deps.engine.get(teamId, id)
    if (s.state !== 'running') return undefined
    const m = await deps.placement.node(s.nodeId).client.getMetrics({ sandboxId: id })
    return metricView(m, deps.clock)
  }

  // Registered before /sandboxes/{sandboxID}/... so "metrics" is never read as an id.
  app.openapi(many, async (c) => {
    const ids = c.req.valid('query').sandbox_ids.split(',').filter(Boolean)
    if (ids.length > 100) throw new WarrenError('invalid_argument', 'sandbox_ids: at most 100 ids')
    const sandboxes: Record<string, ReturnType<typeof metricView>> = {}
    // As for unknown ids, one that could never be an id is just not in the answer.
    for (const id of ids.filter(isSandboxIdLike)) {
      const m = await sample(c.get('team'), id).catch((err: unknown) => {
        if (err instanceof WarrenError && err.code === 'not_found') return undefined
        throw err
      })
      if (m) sandboxes[id] = m
    }
    return c.json({ sandboxes }, 200)
  })

  // Warren samples on request: the one sample is "now", returned when the
  // asked window (unix seconds) contains it.
  app.openapi(one, async (c) => {
    const { start, end } = c.req.valid('query')
    const m = await sample(c.get('team'), c.req.valid('param').sandboxID)
    const inWindow =
      m &&
      (start === undefined || m.timestampUnix >= start) &&
      (end === undefined || m.timestampUnix <= end)
    return c.json(inWindow ? [m] : [], 200)
  })
}
