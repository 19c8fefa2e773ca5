// Bad input on every route, in process: the right status and {code, message}
// naming the offending field, and no state change — the store's rows, the
// catalog, the node's sandboxes and the calls it received are as before.
// (tests/api/validation.test.ts runs the same table against `warren up`.)
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { expectApiError, stateOf } from '../testing/assertions.js'
import { type InProcessApi, type RequestOptions, startInProcessApi } from '../testing/in-process.js'
import type { NodeMethod } from '../testing/stand-in-node.js'

const UNKNOWN = 'zzzzzzzzzzzzzzzzzzz0'
let api: InProcessApi
let id: string

beforeAll(async () => {
  api = await startInProcessApi()
  id = await api.create({ templateID: 'base', timeout: 300 })
})
afterAll(() => api.close())
beforeEach(() => {
  api.node.calls.length = 0
})

/** `[method, path (":id" is the live sandbox), request, status, message, node calls made]` */
type Case = [string, string, RequestOptions, number, RegExp, NodeMethod[]?]

const json = (j: unknown): RequestOptions => ({ json: j })
const base = (extra: Record<string, unknown>) => json({ templateID: 'base', ...extra })
const net = (network: Record<string, unknown>) => base({ network })

// biome-ignore format: a table reads best one case per line
const CREATE: Array<[RequestOptions, number, RegExp, NodeMethod[]?]> = [
  [{ raw: '{"templateID": "base",' }, 400, /JSON/],
  [{ raw: 'templateID=base', contentType: 'text/plain' }, 415, /Media Type/],
  [{ raw: 'null' }, 400, /object/],
  [json([]), 400, /object/],
  [json({ timeout: 30 }), 400, /templateID/],
  [json({ templateID: 5 }), 400, /templateID/],
  [json({ templateID: '../etc' }), 400, /template/],
  [base({ timeout: '30' }), 400, /timeout/],
  [base({ timeout: -1 }), 400, /timeout/],
  [base({ timeout: 0 }), 400, /timeout/],
  [base({ timeout: 1e12 }), 400, /timeout/],
  [base({ timeout: 1.5 }), 400, /timeout/],
  [base({ metadata: 'x' }), 400, /metadata/],
  [base({ metadata: { a: 1 } }), 400, /metadata/],
  [base({ metadata: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, 'v'])) }), 400, /metadata.*256/],
  [base({ envVars: { '1X': 'y' } }), 400, /envVars/],
  [base({ gpu: true }), 400, /'gpu'/],
  [base({ lifecycle: { onIdle: 'kill' } }), 400, /'lifecycle\.onIdle'/],
  [base({ lifecycle: { onTimeout: 'sleep' } }), 400, /lifecycle\.onTimeout/],
  [base({ autoPause: true, lifecycle: { onTimeout: 'kill' } }), 400, /autoPause.*conflicts/],
  [base({ autoPauseMemory: false }), 400, /autoPauseMemory/],
  [base({ autoPause: true, autoPauseMemory: false, autoResume: { enabled: true } }), 400, /autoResume/],
  [net({ allowOut: '1.1.1.1' }), 400, /network\.allowOut/],
  [net({ httpsPorts: [49983] }), 400, /httpsPorts: envd's port/],
  [net({ httpsPorts: [0] }), 400, /network\.httpsPorts/],
  [net({ httpsPorts: '443' }), 400, /network\.httpsPorts/],
  // What the pinned SDK can send and Warren does not implement: named, never dropped.
  [base({ volumeMounts: [{ name: 'v', path: '/data' }] }), 400, /volume 'v' not found/],
  [base({ mcp: { github: {} } }), 400, /unsupported field 'mcp'/],
  [base({ isolation: 'kata' }), 400, /isolation/],
  [base({ isolation: 1 }), 400, /isolation/],
  // The stand-in node offers runc only: never a silent runc sandbox instead.
  [base({ isolation: 'gvisor' }), 400, /no node of this deployment offers gvisor isolation/],
  [base({ iam: { tokens: { t: { audience: 'a', tokenType: 'jwt' } } } }), 400, /unsupported field 'iam'/],
  [net({ egressProxy: { address: 'proxy.test:1080' } }), 400, /unsupported field 'network\.egressProxy'/],
  [net({ rules: { 'api.test': [{}] } }), 400, /unsupported field 'network\.rules'/],
  [net({ allowOut: ['300.1.1.1'] }), 400, /allowOut: '300\.1\.1\.1'/],
  [net({ allowOut: ['example.com'] }), 400, /require '0\.0\.0\.0\/0' in denyOut/],
  [net({ allowOut: ['exa mple.com'], denyOut: ['0.0.0.0/0'] }), 400, /not a valid domain/],
  [net({ denyOut: ['example.com'] }), 400, /denyOut: 'example\.com' is not an IP/],
  [net({ denyOut: ['2001:db8::/32'] }), 400, /IPv6/],
  [net({ allowIn: ['10.0.0.0/8'] }), 400, /require '0\.0\.0\.0\/0' in denyIn/],
  [net({ allowIn: ['10.0.0.0/8:70000'], denyIn: ['0.0.0.0/0'] }), 400, /allowIn: .* invalid port/],
  [net({ denyIn: ['10.0.0.0/33'] }), 400, /denyIn/],
  [net({ maskRequestHost: 'bad host' }), 400, /maskRequestHost/],
  [base({ allow_internet_access: 'no' }), 400, /allow_internet_access/],
  // The one bad input only the node can judge: it is asked, and refuses.
  [json({ templateID: 'no-such-template' }), 404, /no-such-template/, ['create']],
]

const connect = (prefix: string): Case[] => [
  ...[
    [{ timeout: 0 }, /timeout/],
    [{ timeout: -5 }, /timeout/],
    [{ timeout: 86_401 }, /timeout/],
    [{ timeout: 1.5 }, /timeout/],
    [{ timeout: 60, autoPause: true }, /'autoPause'/],
    [{ memory: 'yes' }, /memory/],
  ].map(([j, m]): Case => ['POST', `${prefix}/:id/connect`, json(j), 400, m as RegExp]),
  ['POST', `${prefix}/:id/connect`, { raw: '{' }, 400, /JSON/],
  ['POST', `${prefix}/:id/connect?wait=1`, json({}), 400, /'wait'/],
  ['POST', `${prefix}/x/connect`, json({}), 404, /sandbox x not found/],
  ['POST', `${prefix}/${'x'.repeat(10_000)}/connect`, json({}), 404, /^sandbox not found$/],
  ['POST', `${prefix}/${UNKNOWN}/connect`, json({}), 404, /not found/],
]

// biome-ignore format: a table reads best one case per line
const cases: Case[] = [
  ...['/sandboxes', '/v2/sandboxes'].flatMap((path) =>
    CREATE.map(([req, status, m, calls]): Case => ['POST', path, req, status, m, calls]),
  ),
  ['POST', '/v2/sandboxes', base({ secure: true }), 400, /'secure'/],
  ['POST', '/v2/sandboxes?dryRun=1', base({}), 400, /'dryRun'/],

  ['GET', '/sandboxes?state=running', {}, 400, /'state'/],
  ['GET', '/sandboxes?metadata=%25zz', {}, 400, /metadata/],
  ...[
    ['limit=0', /limit/], ['limit=-1', /limit/], ['limit=1001', /limit/], ['limit=2.5', /limit/],
    ['limit=ten', /limit/], ['state=sleeping', /state/], ['order=sideways', /order/],
    ['startedAfter=yesterday', /startedAfter/], ['nextToken=forged', /nextToken/],
    ['metadata=%25zz', /metadata/], ['page=2', /'page'/],
  ].map(([q, m]): Case => ['GET', `/v2/sandboxes?${q}`, {}, 400, m as RegExp]),

  ...['GET', 'DELETE'].flatMap((method): Case[] => [
    // Any id is looked up; one that could never be an id is not found without a lookup.
    [method, '/sandboxes/NOT-AN-ID', {}, 404, /sandbox NOT-AN-ID not found/],
    [method, '/sandboxes/abc', {}, 404, /sandbox abc not found/],
    [method, `/sandboxes/${'a'.repeat(21)}`, {}, 404, /not found/],
    [method, `/sandboxes/${'a'.repeat(10_000)}`, {}, 404, /^sandbox not found$/],
    [method, '/sandboxes/..%2F..%2Fetc%2Fpasswd', {}, 404, /^sandbox not found$/],
    [method, '/sandboxes/a%00b', {}, 404, /^sandbox not found$/],
    [method, '/sandboxes/a.b', {}, 404, /^sandbox not found$/],
    [method, `/sandboxes/${UNKNOWN}`, {}, 404, new RegExp(UNKNOWN)],
  ]),
  ['GET', '/sandboxes/:id?fields=all', {}, 400, /'fields'/],
  ['DELETE', '/sandboxes/:id?force=true', {}, 400, /'force'/],

  ...[
    [{ timeout: -1 }, /timeout/], [{ timeout: 86_401 }, /timeout/], [{ timeout: 2.5 }, /timeout/],
    [{ timeout: '60' }, /timeout/], [{}, /timeout/], [{ timeout: 60, extend: true }, /'extend'/],
  ].map(([j, m]): Case => ['POST', '/sandboxes/:id/timeout', json(j), 400, m as RegExp]),
  ['POST', '/sandboxes/:id/timeout', { raw: '{"timeout":' }, 400, /JSON/],
  ['POST', '/sandboxes/:id/timeout?async=1', json({ timeout: 5 }), 400, /'async'/],
  ['POST', '/sandboxes/X/timeout', json({ timeout: 5 }), 404, /not found/],
  ['POST', '/sandboxes/%2e%2e/timeout', json({ timeout: -1 }), 404, /^sandbox not found$|no route/],
  ['POST', '/sandboxes/a%2Fb/timeout', json({ timeout: -1 }), 404, /^sandbox not found$/],
  ['POST', `/sandboxes/${UNKNOWN}/timeout`, json({ timeout: 5 }), 404, /not found/],

  ...[
    [{ duration: -1 }, /duration/], [{ duration: 3601 }, /duration/], [{ duration: 0.5 }, /duration/],
    [{ duration: 'long' }, /duration/], [{ timeout: 30 }, /'timeout'/],
  ].map(([j, m]): Case => ['POST', '/sandboxes/:id/refreshes', json(j), 400, m as RegExp]),
  ['POST', '/sandboxes/:id/refreshes', { raw: '[' }, 400, /JSON/],
  ['POST', `/sandboxes/${UNKNOWN}/refreshes`, {}, 404, /not found/],

  ...connect('/sandboxes'),
  ...connect('/v2/sandboxes'),

  ['POST', '/sandboxes/:id/pause', json({ memory: 'no' }), 400, /memory/],
  ['POST', '/sandboxes/:id/pause', json({ memory: true, keep: 1 }), 400, /'keep'/],
  ['POST', '/sandboxes/:id/pause?now=1', json({}), 400, /'now'/],
  ['POST', '/sandboxes/x/pause', json({}), 404, /not found/],
  ['POST', `/sandboxes/${UNKNOWN}/pause`, json({}), 404, /not found/],

  ['POST', '/sandboxes/:id/resume', json({ timeout: 0 }), 400, /timeout/],
  ['POST', '/sandboxes/:id/resume', json({ autoPause: true }), 400, /autoPause cannot change/],
  ['POST', '/sandboxes/:id/resume', json({ timeout: 60 }), 409, /already running/],
  ['POST', `/sandboxes/${UNKNOWN}/resume`, json({}), 404, /not found/],

  ['PUT', '/sandboxes/:id/network', json({ allowOut: ['example.com'] }), 400, /0\.0\.0\.0\/0/],
  ['PUT', '/sandboxes/:id/network', json({ allowIn: ['1.2.3.4:0'], denyIn: ['0.0.0.0/0'] }), 400, /allowIn/],
  ['PUT', '/sandboxes/:id/network', json({ denyOut: '10.0.0.0/8' }), 400, /denyOut/],
  ['PUT', '/sandboxes/:id/network', json({ allowPublicTraffic: false }), 400, /'allowPublicTraffic'/],
  ['PUT', '/sandboxes/:id/network', json({ maskRequestHost: 'a:99999' }), 400, /maskRequestHost/],
  ['PUT', '/sandboxes/:id/network', { raw: '{"allowOut": [' }, 400, /JSON/],
  ['PUT', '/sandboxes/:id/network?merge=1', json({}), 400, /'merge'/],
  ['PUT', `/sandboxes/${UNKNOWN}/network`, json({}), 404, /not found/],
  // No body is not "replace with nothing": only an explicit {} clears the rules.
  ['PUT', '/sandboxes/:id/network', {}, 400, /JSON body is required/],
  ['PUT', '/sandboxes/:id/network', json({ httpsPorts: [8443] }), 400, /'httpsPorts'/],

  ['GET', '/sandboxes/x/metrics', {}, 404, /not found/],
  ['GET', `/sandboxes/${UNKNOWN}/metrics`, {}, 404, /not found/],
  ['GET', '/sandboxes/:id/metrics?start=soon', {}, 400, /start/],
  ['GET', '/sandboxes/:id/metrics?step=5', {}, 400, /'step'/],
  ['GET', '/sandboxes/metrics', {}, 400, /sandbox_ids/],
  ['GET', `/sandboxes/metrics?sandbox_ids=${Array(101).fill(UNKNOWN).join(',')}`, {}, 400, /sandbox_ids/],

  ['GET', '/sandboxes/x/logs', {}, 404, /not found/],
  ['GET', `/v2/sandboxes/${'x'.repeat(65)}/logs`, {}, 404, /^sandbox not found$/],
  ['GET', `/sandboxes/${UNKNOWN}/logs`, {}, 404, /not found/],
  ['GET', '/sandboxes/:id/logs?start=-1', {}, 400, /start/],
  ['GET', '/sandboxes/:id/logs?limit=0', {}, 400, /limit/],
  ['GET', '/sandboxes/:id/logs?level=info', {}, 400, /'level'/],
  ['GET', `/v2/sandboxes/${UNKNOWN}/logs`, {}, 404, /not found/],
  ['GET', '/v2/sandboxes/:id/logs?level=loud', {}, 400, /level/],
  ['GET', '/v2/sandboxes/:id/logs?direction=up', {}, 400, /direction/],
  ['GET', '/v2/sandboxes/:id/logs?cursor=abc', {}, 400, /cursor/],

  ['GET', '/templates?public=true', {}, 400, /'public'/],
  ['GET', '/sandboxes/:id/snapshots', {}, 404, /no route/],
  ['PATCH', '/sandboxes/:id', json({}), 404, /no route/],
]

describe('bad input', () => {
  it.each(cases)('%s %s %j → %i', async (method, path, req, status, message, calls = []) => {
    const before = await stateOf(api)
    const res = await api.request(method, path.replaceAll(':id', id), req)
    expectApiError(res, status, message)
    expect(await stateOf(api)).toEqual(before)
    expect(api.node.callsOf().map((c) => c.method)).toEqual(calls)
  })

  it('the same routes answer when the request is right', async () => {
    const ok = async (method: string, path: string, req: RequestOptions = {}) =>
      (await api.request(method, path.replaceAll(':id', id), req)).status
    const endAt = (await api.row(id)).endAt
    expect(await ok('GET', '/sandboxes/:id/metrics')).toBe(200)
    expect(await ok('GET', '/sandboxes/metrics?sandbox_ids=:id')).toBe(200)
    // Unknown ids of any shape are just absent from the answer.
    const many = await api.request(
      'GET',
      `/sandboxes/metrics?sandbox_ids=${id},BAD,${UNKNOWN},..%2Fx,${'y'.repeat(200)}`,
    )
    expect(many.status).toBe(200)
    expect(Object.keys((many.body as { sandboxes: object }).sandboxes)).toEqual([id])
    expect(await ok('GET', '/sandboxes/:id/logs?limit=5')).toBe(200)
    expect(await ok('GET', '/v2/sandboxes/:id/logs?level=info')).toBe(200)
    expect(await ok('GET', '/templates')).toBe(200)
    expect(await ok('GET', '/v2/sandboxes?limit=10&state=running,paused')).toBe(200)
    // Neither an empty refresh (15 s) nor a short connect shortens the lease.
    expect(await ok('POST', '/sandboxes/:id/refreshes')).toBe(204)
    expect(await ok('POST', '/v2/sandboxes/:id/connect', json({ timeout: 60 }))).toBe(200)
    expect((await api.row(id)).endAt).toBe(endAt)
  })
})
