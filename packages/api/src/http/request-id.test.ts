import { afterEach, describe, expect, it } from 'vitest'
import { type InProcessApi, startInProcessApi } from '../testing/in-process.js'

const open: InProcessApi[] = []
afterEach(async () => {
  for (const api of open.splice(0)) await api.close()
})

describe('x-request-id', () => {
  it("is the caller's when valid, answered back and passed to every node call", async () => {
    const api = await startInProcessApi()
    open.push(api)
    api.node.requestIds.length = 0
    const res = await api.request('POST', '/v2/sandboxes', {
      json: { templateID: 'base' },
      headers: { 'x-request-id': 'create-7f3a' },
    })
    expect(res.status).toBe(201)
    expect(res.headers.get('x-request-id')).toBe('create-7f3a')
    const id = (res.body as { sandboxID: string }).sandboxID
    expect(api.node.requestIds.filter((r) => r.method === 'create')).toEqual([
      { method: 'create', requestId: 'create-7f3a' },
    ])
    const kill = await api.request('DELETE', `/sandboxes/${id}`, {
      headers: { 'x-request-id': 'kill-1' },
    })
    expect(kill.status).toBe(204)
    expect(api.node.requestIds.filter((r) => r.method === 'kill')).toEqual([
      { method: 'kill', requestId: 'kill-1' },
    ])
  })

  it('is made by the API when absent or invalid, also for errors', async () => {
    const api = await startInProcessApi()
    open.push(api)
    const a = await api.request('GET', '/sandboxes/unknown-sandbox')
    expect(a.status).toBe(404)
    expect(a.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    const b = await api.request('GET', '/v2/sandboxes', {
      headers: { 'x-request-id': 'two words\tand a tab' },
    })
    expect(b.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(b.headers.get('x-request-id')).not.toBe(a.headers.get('x-request-id'))
  })
})
