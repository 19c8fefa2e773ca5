// One request id from the edge through the API to the node, in `warren up`:
// a request the edge resumes a paused sandbox for is logged with the same
// id by the edge proxy, the API (its ResumeSandbox) and the node (its resume
// RPC; the all-in-one's edge hands the request to its in-process node
// without a second proxy hop); a REST call's id reaches the node's create; and
// no line of the process's log names a key twice (the all-in-one's
// `component` did).
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { api, detail, sleep } from '../helpers/api-client.js'
import { pause } from '../helpers/lifecycle.js'
import { proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren({ env: { WARREN_LOG_LEVEL: 'debug' } })
const sandboxes = useSandboxes(warren)
const ENVD = 49983

interface Line {
  raw: string
  component?: string
  requestId?: string
  msg?: string
  rpc?: string
}

function logLines(): Line[] {
  return readFileSync(warren().logPath, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((raw) => ({ raw, ...(JSON.parse(raw) as object) }))
}

/** Top-level keys of a JSON line as written, duplicates included (JSON.parse keeps the last). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = []
  let depth = 0
  let inString = false
  let start = -1
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]
    if (inString) {
      if (ch === '\\') i++
      else if (ch === '"') {
        inString = false
        if (depth === 1 && line[i + 1] === ':') keys.push(line.slice(start + 1, i))
      }
    } else if (ch === '"') {
      inString = true
      start = i
    } else if (ch === '{' || ch === '[') depth++
    else if (ch === '}' || ch === ']') depth--
  }
  return keys
}

async function linesWith(requestId: string, want: (ls: Line[]) => boolean): Promise<Line[]> {
  const end = Date.now() + 10_000
  for (;;) {
    const ls = logLines().filter((l) => l.requestId === requestId)
    if (want(ls) || Date.now() > end) return ls
    await sleep(100)
  }
}

describe('request ids across the edge, the API and the node', () => {
  it('follow a create from the API to the node, and a resume from the edge to both', async () => {
    const createId = `e2e-create-${randomUUID()}`
    const res = await api(warren(), 'POST', '/v2/sandboxes', {
      json: {
        templateID: 'base',
        timeout: 120,
        lifecycle: { onTimeout: 'pause', autoResume: true },
        metadata: { suite: 'request-id' },
      },
      headers: { 'x-request-id': createId },
    })
    expect(res.status, res.text).toBe(201)
    expect(res.headers.get('x-request-id')).toBe(createId)
    const made = res.body as { sandboxID: string; envdAccessToken: string }
    const id = sandboxes.add(made.sandboxID)
    const created = await linesWith(
      createId,
      (ls) => ls.some((l) => l.rpc === 'create') && ls.some((l) => l.msg === 'request'),
    )
    expect(created.map((l) => `${l.component} ${l.rpc ?? l.msg}`)).toEqual(
      expect.arrayContaining(['api request', 'orchestrator create']),
    )

    expect(await pause(warren(), id)).toBe(204)
    expect((await detail(warren(), id)).state).toBe('paused')
    const edgeId = `e2e-edge-${randomUUID()}`
    const woke = await proxyRequest(warren(), {
      host: sandboxHost(warren(), id, ENVD),
      path: '/health',
      // envd's own token: the edge wakes a sandbox only for traffic it would accept.
      headers: { 'x-request-id': edgeId, 'x-access-token': made.envdAccessToken },
    })
    expect(woke.status, woke.text).toBeLessThan(300)
    expect((await detail(warren(), id)).state).toBe('running')
    const traced = await linesWith(edgeId, (ls) => ls.length >= 3)
    const seen = traced.map((l) => `${l.component} ${l.rpc ?? l.msg}`)
    expect(seen).toEqual(
      expect.arrayContaining(['proxy proxied', 'api resumeSandbox', 'orchestrator resume']),
    )
  })

  it('writes no log line that names a key twice', async () => {
    const lines = logLines()
    expect(lines.length).toBeGreaterThan(8)
    for (const { raw } of lines) {
      const keys = topLevelKeys(raw)
      expect(
        keys.filter((k, i) => keys.indexOf(k) !== i),
        raw,
      ).toEqual([])
    }
    const components = new Set(lines.map((l) => l.component))
    for (const c of ['api', 'orchestrator', 'proxy']) expect(components).toContain(c)
    for (const c of components) expect(['warren', 'api', 'orchestrator', 'proxy']).toContain(c)
  })
})
