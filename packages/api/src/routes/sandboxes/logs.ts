import { timestampMs } from '@bufbuild/protobuf/wkt'
import { createRoute, z } from '@hono/zod-openapi'
import type { LogLine } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, sandboxIdParams } from '../params.js'

const LEVELS = ['debug', 'info', 'warn', 'error'] as const

const v1 = createRoute({
  method: 'get',
  path: '/sandboxes/{sandboxID}/logs',
  request: {
    params: sandboxIdParams,
    query: z.strictObject({
      start: z.coerce.number().int().min(0).optional(),
      limit: z.coerce.number().int().min(1).max(10_000).optional(),
    }),
  },
  responses: {
    200: {
      description: 'Sandbox logs',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
    ...errorResponses,
  },
})

const v2 = createRoute({
  method: 'get',
  path: '/v2/sandboxes/{sandboxID}/logs',
  request: {
    params: sandboxIdParams,
    query: z.strictObject({
      cursor: z.coerce.number().int().min(0).optional(),
      limit: z.coerce.number().int().min(1).max(10_000).optional(),
      direction: z.enum(['forward', 'backward']).optional(),
      level: z.enum(LEVELS).optional(),
      search: z.string().max(256).optional(),
    }),
  },
  responses: {
    200: {
      description: 'Structured logs',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
    ...errorResponses,
  },
})

function entry(l: LogLine) {
  const ts = new Date(l.timestamp ? timestampMs(l.timestamp) : 0).toISOString()
  const level = (LEVELS as readonly string[]).includes(l.level) ? l.level : 'info'
  return { timestamp: ts, level, message: l.message, fields: l.fields }
}

export function registerLogs(app: App, deps: RouteDeps): void {
  const fetchLines = async (
    team: Parameters<typeof deps.engine.get>[0],
    id: string,
    startMs: number,
    limit: number,
  ) => {
    const s = await deps.engine.get(team, id)
    const res = await deps.placement
      .node(s.nodeId)
      .client.getLogs({ sandboxId: id, startMs: BigInt(startMs), limit })
    return res.lines
  }

  app.openapi(v1, async (c) => {
    const q = c.req.valid('query')
    const lines = await fetchLines(
      c.get('team'),
      c.req.valid('param').sandboxID,
      q.start ?? 0,
      q.limit ?? 1000,
    )
    const entries = lines.map(entry)
    return c.json(
      {
        logs: entries.map((e, i) => ({ timestamp: e.timestamp, line: lines[i]!.line })),
        logEntries: entries,
      },
      200,
    )
  })

  app.openapi(v2, async (c) => {
    const q = c.req.valid('query')
    const minLevel = LEVELS.indexOf(q.level ?? 'debug')
    let entries = (
      await fetchLines(c.get('team'), c.req.valid('param').sandboxID, q.cursor ?? 0, 10_000)
    )
      .map(entry)
      .filter((e) => LEVELS.indexOf(e.level as (typeof LEVELS)[number]) >= minLevel)
      .filter((e) => !q.search || e.message.includes(q.search))
    if (q.direction === 'backward') entries = entries.reverse()
    return c.json({ logs: entries.slice(0, q.limit ?? 1000) }, 200)
  })
}
