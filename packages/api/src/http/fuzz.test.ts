import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type InProcessApi, startInProcessApi } from '../testing/in-process.js'

// Property-based fuzzing of every route the API documents, in process: for
// any method, path parameters, query and body a client may send, the answer
// is never a 5xx, every error is E2B's `{code, message}`, and a rejected
// request changes nothing (store rows of every table, routes, the node).

let api: InProcessApi
let sandboxId: string
let routes: Array<{ method: string; path: string }>

/** Everything a request could change, as one comparable snapshot. */
async function everything() {
  const tables = [
    'sandboxes',
    'teams',
    'api_keys',
    'templates',
    'template_aliases',
    'template_tags',
    'template_builds',
    'template_files',
    'events',
    'webhooks',
    'webhook_deliveries',
  ] as const
  const rows: Record<string, unknown> = {}
  for (const t of tables) rows[t] = await api.db.selectFrom(t).selectAll().execute()
  return {
    rows,
    routes: api.catalog.snapshot().map((r) => `${r.sandboxId} ${r.state}`),
    onNode: [...api.node.sandboxes.keys()].sort(),
  }
}

beforeAll(async () => {
  api = await startInProcessApi()
  sandboxId = await api.create()
  const doc = (await api.request('GET', '/openapi.json')).body as {
    paths: Record<string, Record<string, unknown>>
  }
  routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => ({ method: method.toUpperCase(), path })),
  )
})
afterAll(() => api?.close())

/** Names E2B's bodies use, so that values reach the validators behind the field names. */
const FIELDS = [
  'templateID', 'timeout', 'metadata', 'envVars', 'secure', 'network', 'lifecycle', 'autoPause',
  'autoResume', 'allow_internet_access', 'memory', 'duration', 'name', 'count', 'allowOut',
  'denyOut', 'allowIn', 'denyIn', 'maskRequestHost', 'cpuCount', 'memoryMB', 'diskSizeMB',
  'steps', 'fromImage', 'fromTemplate', 'tags', 'alias', 'force', 'url', 'secret', 'kinds',
] // biome-ignore format: a list

const value = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    -1,
    0,
    1,
    2 ** 31,
    Number.POSITIVE_INFINITY,
    '',
    'x'.repeat(300),
    '0.0.0.0/0',
    '../../etc',
  ),
)
const body = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 8 })), value, {
    maxKeys: 5,
  }),
  fc.string({ maxLength: 40 }).map((raw) => ({ raw })),
)
const param = fc.oneof(
  fc.constant(() => sandboxId),
  fc
    .constantFrom('zzzzzzzzzzzzzzzzzzz0', 'base', 'x', '', '..', '%00', 'a'.repeat(300))
    .map((v) => () => v),
  fc.string({ maxLength: 24 }).map((v) => () => v),
)
const query = fc.dictionary(
  fc.constantFrom(
    'limit', 'nextToken', 'state', 'metadata', 'start', 'end', 'x', 'logsOffset', 'kind', 'after',
    'sandboxId',
  ), // biome-ignore format: a list
  fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('-1', '0', '1e9', 'running')),
  { maxKeys: 3 },
)

describe('every documented route', () => {
  it('answers any input without a 5xx, errors as {code, message}, rejections changing nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 10_000 }),
        param,
        query,
        body,
        async (which, id, q, b) => {
          const route = routes[which % routes.length]!
          // A run that killed or paused the sandbox leaves the next ones a fresh one.
          if ((await api.row(sandboxId)).state !== 'running') sandboxId = await api.create()
          const path = route.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(id()))
          const qs = new URLSearchParams(q).toString()
          const before = await everything()
          // GET and DELETE carry no body (fetch refuses one on GET).
          const bodyless = route.method === 'GET' || route.method === 'DELETE'
          const target = qs ? `${path}?${qs}` : path
          // An event stream that opened never ends: its headers are the answer.
          if (route.path === '/events') {
            const ctl = new AbortController()
            const stream = await api.fetch(target, { signal: ctl.signal })
            if (stream.status === 200) {
              expect(stream.headers.get('content-type')).toContain('text/event-stream')
              ctl.abort()
              await stream.body?.cancel().catch(() => {})
              return
            }
          }
          const res = await api.request(route.method, target, {
            ...(bodyless || b === undefined
              ? {}
              : b && typeof b === 'object' && 'raw' in b && typeof b.raw === 'string'
                ? { raw: b.raw }
                : { json: b }),
          })
          const where = `${route.method} ${path}?${qs} ${JSON.stringify(b)} -> ${res.status} ${res.text}`
          expect(res.status, where).toBeLessThan(500)
          if (res.status >= 400) {
            expect(res.body, where).toEqual({ code: res.status, message: expect.any(String) })
            expect(await everything(), where).toEqual(before)
          }
        },
      ),
      { numRuns: 800 },
    )
  })
})
