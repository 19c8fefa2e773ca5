// Bad input on every route: a clear {code, message} with the right status,
// naming the offending field, and no state change anywhere.
import { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type ApiRequest,
  api,
  detail,
  expectApiError,
  listedEndAts,
} from '../helpers/api-client.js'
import { nodeSandboxIds } from '../helpers/orchestrator-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const UNKNOWN = 'zzzzzzzzzzzzzzzzzzz0'
let id: string
let endAt: string

beforeAll(async () => {
  const sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 300_000 })
  id = sbx.sandboxId
  endAt = (await detail(warren(), id)).endAt
})

afterAll(async () => {
  if (id) await Sandbox.kill(id, warren().sdk).catch(() => {})
})

type Case = [method: string, path: string, req: ApiRequest, status: number, message: RegExp]

/** `[name, request, status, message]` for both create paths. */
// biome-ignore format: a table reads best one case per line
const CREATE: Array<[string, ApiRequest, number, RegExp]> = [
  ['malformed JSON', { raw: '{"templateID": "base",' }, 400, /JSON/],
  ['a non-JSON content type', { raw: 'templateID=base', contentType: 'text/plain' }, 415, /Media Type/],
  ['null', { raw: 'null' }, 400, /object/],
  ['an array', { json: [] }, 400, /object/],
  ['no templateID', { json: { timeout: 30 } }, 400, /templateID/],
  ['templateID not a string', { json: { templateID: 5 } }, 400, /templateID/],
  ['templateID malformed', { json: { templateID: '../etc' } }, 400, /template/],
  ['timeout a string', { json: { templateID: 'base', timeout: '30' } }, 400, /timeout/],
  ['timeout negative', { json: { templateID: 'base', timeout: -1 } }, 400, /timeout/],
  ['timeout zero', { json: { templateID: 'base', timeout: 0 } }, 400, /timeout/],
  ['timeout huge', { json: { templateID: 'base', timeout: 1e12 } }, 400, /timeout/],
  ['timeout fractional', { json: { templateID: 'base', timeout: 1.5 } }, 400, /timeout/],
  ['metadata not an object', { json: { templateID: 'base', metadata: 'x' } }, 400, /metadata/],
  ['metadata value not a string', { json: { templateID: 'base', metadata: { a: 1 } } }, 400, /metadata/],
  ['envVars with a bad name', { json: { templateID: 'base', envVars: { '1X': 'y' } } }, 400, /envVars/],
  ['an unknown field', { json: { templateID: 'base', gpu: true } }, 400, /'gpu'/],
  ['an unknown nested field', { json: { templateID: 'base', lifecycle: { onIdle: 'kill' } } }, 400, /'lifecycle\.onIdle'/],
  ['network.allowOut not a list', { json: { templateID: 'base', network: { allowOut: '1.1.1.1' } } }, 400, /network\.allowOut/],
  ["an E2B field Warren lacks", { json: { templateID: 'base', mcp: { github: {} } } }, 400, /unsupported field 'mcp'/],
  ['a volume that does not exist', { json: { templateID: 'base', volumeMounts: [{ name: 'v', path: '/d' }] } }, 400, /volume 'v' not found/],
  ["envd's port as an HTTPS port", { json: { templateID: 'base', network: { httpsPorts: [49983] } } }, 400, /httpsPorts/],
  ['an unknown template', { json: { templateID: 'no-such-template' } }, 404, /no-such-template/],
]

const connect = (base: string): Case[] => [
  ...[
    [{ timeout: 0 }, /timeout/],
    [{ timeout: -5 }, /timeout/],
    [{ timeout: 86_401 }, /timeout/],
    [{ timeout: 1.5 }, /timeout/],
    [{ timeout: 60, autoPause: true }, /'autoPause'/],
  ].map(
    ([json, message]): Case => ['POST', `${base}/:id/connect`, { json }, 400, message as RegExp],
  ),
  ['POST', `${base}/:id/connect`, { raw: '{' }, 400, /JSON/],
  ['POST', `${base}/x/connect`, { json: {} }, 404, /not found/],
  ['POST', `${base}/${UNKNOWN}/connect`, { json: {} }, 404, /not found/],
]

/** `[method, path (":id" is the live sandbox), request, status, message]`. */
// biome-ignore format: a table reads best one case per line
const cases: Case[] = [
  ...['/sandboxes', '/v2/sandboxes'].flatMap((path) =>
    CREATE.map(([, req, status, message]): Case => ['POST', path, req, status, message]),
  ),
  ['POST', '/v2/sandboxes', { json: { templateID: 'base', secure: true } }, 400, /'secure'/],

  ['GET', '/sandboxes?state=running', {}, 400, /'state'/],
  ['GET', '/sandboxes?metadata=%25zz', {}, 400, /metadata/],
  ...[
    ['limit=0', /limit/], ['limit=-1', /limit/], ['limit=1001', /limit/], ['limit=2.5', /limit/],
    ['limit=ten', /limit/], ['state=sleeping', /state/], ['order=sideways', /order/],
    ['startedAfter=yesterday', /startedAfter/], ['nextToken=forged', /nextToken/],
    ['metadata=%25zz', /metadata/], ['page=2', /'page'/],
  ].map(([q, message]): Case => ['GET', `/v2/sandboxes?${q}`, {}, 400, message as RegExp]),

  ...['GET', 'DELETE'].flatMap((method): Case[] => [
    [method, '/sandboxes/NOT-AN-ID', {}, 404, /not found/],
    [method, '/sandboxes/abc', {}, 404, /not found/],
    [method, `/sandboxes/${'a'.repeat(10_000)}`, {}, 404, /^sandbox not found$/],
    [method, '/sandboxes/..%2F..%2Fetc', {}, 404, /^sandbox not found$/],
    [method, `/sandboxes/${UNKNOWN}`, {}, 404, new RegExp(UNKNOWN)],
  ]),

  ...[
    [{ timeout: -1 }, /timeout/], [{ timeout: 86_401 }, /timeout/], [{ timeout: 2.5 }, /timeout/],
    [{ timeout: '60' }, /timeout/], [{}, /timeout/], [{ timeout: 60, extend: true }, /'extend'/],
  ].map(([json, message]): Case => ['POST', '/sandboxes/:id/timeout', { json }, 400, message as RegExp]),
  ['POST', '/sandboxes/:id/timeout', { raw: '{"timeout":' }, 400, /JSON/],
  ['POST', '/sandboxes/X/timeout', { json: { timeout: 5 } }, 404, /not found/],
  ['POST', `/sandboxes/${UNKNOWN}/timeout`, { json: { timeout: 5 } }, 404, /not found/],

  ...[
    [{ duration: -1 }, /duration/], [{ duration: 3601 }, /duration/], [{ duration: 0.5 }, /duration/],
    [{ duration: 'long' }, /duration/], [{ timeout: 30 }, /'timeout'/],
  ].map(([json, message]): Case => ['POST', '/sandboxes/:id/refreshes', { json }, 400, message as RegExp]),
  ['POST', '/sandboxes/:id/refreshes', { raw: '[' }, 400, /JSON/],
  ['POST', `/sandboxes/${UNKNOWN}/refreshes`, {}, 404, /not found/],

  ...connect('/sandboxes'),
  ...connect('/v2/sandboxes'),

  ['GET', '/sandboxes/x/metrics', {}, 404, /not found/],
  ['GET', `/sandboxes/${UNKNOWN}/metrics`, {}, 404, /not found/],
  ['GET', '/sandboxes/:id/metrics?start=soon', {}, 400, /start/],
  ['GET', '/sandboxes/:id/metrics?step=5', {}, 400, /'step'/],
  ['GET', '/sandboxes/metrics', {}, 400, /sandbox_ids/],
  ['GET', `/sandboxes/metrics?sandbox_ids=${Array(101).fill(UNKNOWN).join(',')}`, {}, 400, /sandbox_ids/],

  ['GET', '/sandboxes/x/logs', {}, 404, /not found/],
  ['GET', `/sandboxes/${UNKNOWN}/logs`, {}, 404, /not found/],
  ['GET', '/sandboxes/:id/logs?start=-1', {}, 400, /start/],
  ['GET', '/sandboxes/:id/logs?limit=0', {}, 400, /limit/],
  ['GET', '/sandboxes/:id/logs?level=info', {}, 400, /'level'/],
  ['GET', `/v2/sandboxes/${UNKNOWN}/logs`, {}, 404, /not found/],
  ['GET', '/v2/sandboxes/:id/logs?level=loud', {}, 400, /level/],
  ['GET', '/v2/sandboxes/:id/logs?direction=up', {}, 400, /direction/],
  ['GET', '/v2/sandboxes/:id/logs?cursor=abc', {}, 400, /cursor/],

  ['GET', '/templates?public=true', {}, 400, /'public'/],
  ['GET', '/sandboxes/:id?fields=all', {}, 400, /'fields'/],
  ['DELETE', '/sandboxes/:id?force=true', {}, 400, /'force'/],
  ['POST', '/sandboxes/:id/timeout?async=1', { json: { timeout: 5 } }, 400, /'async'/],
  ['POST', '/v2/sandboxes?dryRun=1', { json: { templateID: 'base' } }, 400, /'dryRun'/],
  ['POST', '/v2/sandboxes', { json: { templateID: 'base', metadata: { big: 'x'.repeat(5 * 2 ** 20) } } }, 413, /body/],
  ['GET', '/sandboxes/:id/snapshots', {}, 404, /no route/],
]

describe('bad input', () => {
  it.each(cases)('%s %s %j → %i', async (method, path, req, status, message) => {
    const res = await api(warren(), method, path.replaceAll(':id', id), req)
    expectApiError(res, status, message)
  })

  it('changed nothing: the same sandbox, lease, listing and node', async () => {
    const d = await detail(warren(), id)
    expect(d.state).toBe('running')
    expect(d.endAt).toBe(endAt)
    expect([...(await listedEndAts(warren())).entries()]).toEqual([[id, endAt]])
    expect(await nodeSandboxIds(warren())).toEqual([id])
  })
})

describe('good input on the same routes', () => {
  it('the routes above answer when the request is right', async () => {
    expect((await api(warren(), 'GET', `/sandboxes/${id}/metrics`)).status).toBe(200)
    expect((await api(warren(), 'GET', `/sandboxes/metrics?sandbox_ids=${id}`)).status).toBe(200)
    expect((await api(warren(), 'GET', `/sandboxes/${id}/logs?limit=5`)).status).toBe(200)
    expect((await api(warren(), 'GET', `/v2/sandboxes/${id}/logs?level=info`)).status).toBe(200)
    expect((await api(warren(), 'GET', '/templates')).status).toBe(200)
    expect((await api(warren(), 'GET', '/sandboxes')).status).toBe(200)
    // Refreshes take an empty body (15 s); neither they nor a short connect
    // shorten the lease.
    expect((await api(warren(), 'POST', `/sandboxes/${id}/refreshes`)).status).toBe(204)
    const connect = { json: { timeout: 60 } }
    expect((await api(warren(), 'POST', `/v2/sandboxes/${id}/connect`, connect)).status).toBe(200)
    expect((await detail(warren(), id)).endAt).toBe(endAt)
  })
})
