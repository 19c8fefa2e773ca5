import { expect } from 'vitest'
import type { ApiResponse, InProcessApi } from './in-process.js'

/** E2B's error contract: exactly `{code, message}` as JSON, code equal to the status. */
export function expectApiError(res: ApiResponse, status: number, message?: RegExp): void {
  const where = `${res.status} ${res.text}`
  expect(res.status, where).toBe(status)
  expect(res.headers.get('content-type'), where).toMatch(/^application\/json/)
  expect(res.body, where).toEqual({ code: status, message: expect.any(String) })
  const text = res.text && JSON.parse(res.text).message
  expect(text.length, where).toBeGreaterThan(0)
  if (message) expect(text, where).toMatch(message)
}

/** Everything a request could have changed: store rows, routes, the node's sandboxes. */
export async function stateOf(api: InProcessApi) {
  return {
    rows: await api.rows(),
    routes: api.catalog.snapshot().map((r) => `${r.sandboxId} ${r.state} ${r.killReason}`),
    onNode: [...api.node.sandboxes.values()].map((s) => structuredClone(s)),
  }
}
