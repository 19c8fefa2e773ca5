import { createRoute, z } from '@hono/zod-openapi'
import { isSandboxIdLike, WarrenError } from '@warren/shared'
import { streamSSE } from 'hono/streaming'
import { EVENT_KINDS, type EventKind, isEventKind } from '../../events/kinds.js'
import { lastPosition, parsePosition, readEvents } from '../../store/events.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses } from '../params.js'

/** Events read from the store per query; a stream catching up reads page after page. */
const PAGE = 200

const query = z.strictObject({
  sandboxId: z
    .string()
    .refine(isSandboxIdLike, 'not a sandbox id')
    .optional()
    .openapi({ description: "Only this sandbox's events" }),
  kind: z
    .string()
    .optional()
    .openapi({ description: `Comma-separated kinds (${EVENT_KINDS.join(', ')}); default all` }),
  after: z.string().optional().openapi({
    description:
      'Start after this event id (as Last-Event-ID, which wins when both are sent); default: new events only',
  }),
})

const route = createRoute({
  method: 'get',
  path: '/events',
  summary: "The team's sandbox lifecycle events, as server-sent events",
  request: { query },
  responses: {
    200: {
      description:
        'text/event-stream: each event is `id: <event id>` and `data: <JSON event>`; comments keep a silent stream alive',
      content: { 'text/event-stream': { schema: z.string() } },
    },
    ...errorResponses,
    503: { description: 'Too many streams on this API replica' },
  },
})

function parseKinds(v: string | undefined): EventKind[] | undefined {
  if (v === undefined) return undefined
  const kinds = v.split(',').filter(Boolean)
  const bad = kinds.find((k) => !isEventKind(k))
  if (bad !== undefined || !kinds.length)
    throw new WarrenError(
      'invalid_argument',
      `kind: '${bad ?? v}' is not one of ${EVENT_KINDS.join(', ')}`,
    )
  return kinds as EventKind[]
}

/**
 * `GET /events`: the caller's team's events, in log order, from a position
 * (Last-Event-ID or `after`, so a client resumes where it stopped) or from
 * now. Each stream reads the store itself and sleeps until this replica's
 * tail sees new events of its team (or a ping is due).
 */
export function registerEventStream(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const q = c.req.valid('query')
    const kinds = parseKinds(q.kind)
    const resumeFrom = c.req.header('last-event-id') || q.after
    const team = c.get('team')
    const { db, tail, pingMs } = deps.events
    let cursor = resumeFrom ? parsePosition(resumeFrom) : await lastPosition(db, team.id)
    const life = deps.events.begin()
    return streamSSE(c, async (stream) => {
      const { signal, leave } = tail.join(team.id)
      stream.onAbort(life.end)
      try {
        // A first line at once: the client knows the stream is open.
        await stream.write(': events\n\n')
        let lastWrite = Date.now()
        while (!life.signal.aborted) {
          const batch = await readEvents(db, {
            teamId: team.id,
            after: cursor,
            sandboxId: q.sandboxId,
            kinds,
            limit: PAGE,
          })
          for (const { position, ...event } of batch) {
            await stream.writeSSE({ id: event.id, data: JSON.stringify(event) })
            cursor = position
            lastWrite = Date.now()
          }
          if (batch.length === PAGE) continue
          if (Date.now() - lastWrite >= pingMs) {
            await stream.write(': ping\n\n')
            lastWrite = Date.now()
          }
          await signal.wait(pingMs, life.signal)
        }
      } finally {
        leave()
        life.end()
      }
    })
  })
}
