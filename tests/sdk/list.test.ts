// Sandbox.list: every filter as the SDK encodes it, and paging with
// x-next-token across several pages.
import { randomUUID } from 'node:crypto'
import { Sandbox, type SandboxInfo, type SandboxListOpts } from 'e2b'
import { beforeAll, describe, expect, it } from 'vitest'
import { api, expectApiError } from '../helpers/api-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)
const run = randomUUID()
const N = 7
/** Oldest first, as created. */
const ids: string[] = []
const started: Date[] = []

beforeAll(async () => {
  // One after another, so start times are distinct and ordered.
  for (let i = 0; i < N; i++) {
    const sbx = await sandboxes.create({
      timeoutMs: 120_000,
      metadata: {
        run,
        idx: String(i),
        parity: i % 2 ? 'odd' : 'even',
        'key with&=': 'v a&l=ue/ü 100%',
      },
    })
    ids.push(sbx.sandboxId)
    started.push((await sbx.getInfo()).startedAt)
  }
}, 60_000)

/** Every item of every page, and the size of each page. */
async function listAll(opts: Omit<SandboxListOpts, 'apiUrl' | 'apiKey'>) {
  const paginator = Sandbox.list({ ...warren().sdk, ...opts })
  const items: SandboxInfo[] = []
  const pages: number[] = []
  while (paginator.hasNext) {
    const page = await paginator.nextItems()
    pages.push(page.length)
    items.push(...page)
    if (pages.length > 20) throw new Error('paging does not end')
  }
  return { ids: items.map((i) => i.sandboxId), items, pages }
}

const newestFirst = () => [...ids].reverse()

describe('Sandbox.list', () => {
  it('filters by metadata as the SDK encodes it, newest first by default', async () => {
    const all = await listAll({ query: { metadata: { run } } })
    expect(all.ids).toEqual(newestFirst())
    const odd = await listAll({ query: { metadata: { run, parity: 'odd' } } })
    expect(odd.ids).toEqual(newestFirst().filter((_, i) => (N - 1 - i) % 2 === 1))
    // Keys and values with spaces, '&', '=', '/', '%' and non-ASCII survive the double encoding.
    const special = await listAll({ query: { metadata: { run, 'key with&=': 'v a&l=ue/ü 100%' } } })
    expect(special.ids).toEqual(newestFirst())
    const wrong = await listAll({ query: { metadata: { run, 'key with&=': 'v a&l=ue/u 100%' } } })
    expect(wrong.ids).toEqual([])
  })

  it('reports each sandbox as getInfo does', async () => {
    const { items } = await listAll({ query: { metadata: { run, idx: '3' } } })
    expect(items).toHaveLength(1)
    const info = await Sandbox.getInfo(ids[3]!, warren().sdk)
    const listed = items[0]!
    expect(listed.sandboxId).toBe(info.sandboxId)
    expect(listed.templateId).toBe('base')
    expect(listed.state).toBe('running')
    expect(listed.metadata).toEqual(info.metadata)
    expect(listed.startedAt.getTime()).toBe(info.startedAt.getTime())
    expect(listed.endAt.getTime()).toBe(info.endAt.getTime())
    expect(listed.cpuCount).toBe(info.cpuCount)
    expect(listed.memoryMB).toBe(info.memoryMB)
    expect(listed.envdVersion).toBe(info.envdVersion)
  })

  it('pages with limit and nextToken: no duplicates, nothing missing, order kept', async () => {
    const paged = await listAll({ limit: 3, query: { metadata: { run } } })
    expect(paged.pages).toEqual([3, 3, 1])
    expect(paged.ids).toEqual(newestFirst())
    // A page that ends exactly at the last item has no next token.
    const exact = await listAll({ limit: N, query: { metadata: { run } } })
    expect(exact.pages).toEqual([N])
    const asc = await listAll({ limit: 2, order: 'asc', query: { metadata: { run } } })
    expect(asc.pages).toEqual([2, 2, 2, 1])
    expect(asc.ids).toEqual(ids)
  })

  it('starts from a given nextToken', async () => {
    const first = Sandbox.list({ ...warren().sdk, limit: 4, query: { metadata: { run } } })
    expect(await first.nextItems()).toHaveLength(4)
    expect(first.hasNext).toBe(true)
    const rest = await listAll({
      limit: 4,
      nextToken: first.nextToken,
      query: { metadata: { run } },
    })
    expect(rest.ids).toEqual(newestFirst().slice(4))
  })

  it('filters by state, template and startedAfter', async () => {
    expect((await listAll({ query: { metadata: { run }, state: ['running'] } })).ids).toEqual(
      newestFirst(),
    )
    expect((await listAll({ query: { metadata: { run }, state: ['paused'] } })).ids).toEqual([])
    expect(
      (await listAll({ query: { metadata: { run }, state: ['running', 'paused'] } })).ids,
    ).toEqual(newestFirst())
    expect((await listAll({ query: { metadata: { run }, template: 'base' } })).ids).toEqual(
      newestFirst(),
    )
    expect((await listAll({ query: { metadata: { run }, template: 'other' } })).ids).toEqual([])
    // "Started at or after": the sandbox started at that very instant is included.
    const after = await listAll({ query: { metadata: { run }, startedAfter: started[3]! } })
    expect(after.ids).toEqual(newestFirst().slice(0, N - 3))
    const later = new Date(started[3]!.getTime() + 1)
    expect((await listAll({ query: { metadata: { run }, startedAfter: later } })).ids).toEqual(
      newestFirst().slice(0, N - 4),
    )
  })

  it('serves GET /sandboxes (v1) with a metadata filter, running only', async () => {
    const q = new URLSearchParams({ metadata: `run=${run}&idx=5` }).toString()
    const res = await api(warren(), 'GET', `/sandboxes?${q}`)
    expect(res.status, res.text).toBe(200)
    expect((res.body as Array<{ sandboxID: string }>).map((s) => s.sandboxID)).toEqual([ids[5]])
  })

  it('rejects a paging token that was tampered with', async () => {
    const res = await api(warren(), 'GET', '/v2/sandboxes?nextToken=not-a-token')
    expectApiError(res, 400, /nextToken/)
  })

  it('no longer lists a killed sandbox, and pages still add up', async () => {
    const victim = ids[2]!
    expect(await Sandbox.kill(victim, warren().sdk)).toBe(true)
    const paged = await listAll({ limit: 2, query: { metadata: { run } } })
    expect(paged.ids).toEqual(newestFirst().filter((id) => id !== victim))
    expect(paged.pages).toEqual([2, 2, 2])
  })
})
