// Raw HTTP against Warren's REST API, for what the SDK hides: exact statuses,
// error bodies, and request shapes the SDK never sends.
import { expect } from 'vitest'
import type { WarrenFixture } from './warren-fixture.js'

export interface ApiResponse {
  status: number
  headers: Headers
  /** The parsed JSON body; undefined when the body is empty or not JSON. */
  body: unknown
  text: string
}

export interface ApiRequest {
  /** Serialized as JSON with `content-type: application/json`. */
  json?: unknown
  /** Sent verbatim (with `contentType`, default application/json). */
  raw?: string
  contentType?: string
  /** The X-API-Key to send; the fixture's key by default, none when null. */
  key?: string | null
  headers?: Record<string, string>
}

/** What `api` needs of a Warren: where its REST API is and the key to send by default. */
export type ApiTarget = Pick<WarrenFixture, 'apiUrl' | 'apiKey'>

export async function api(
  w: ApiTarget,
  method: string,
  path: string,
  req: ApiRequest = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...req.headers }
  const key = req.key === undefined ? w.apiKey : req.key
  if (key !== null) headers['x-api-key'] = key
  let body: string | undefined
  if (req.json !== undefined) {
    body = JSON.stringify(req.json)
    headers['content-type'] = req.contentType ?? 'application/json'
  } else if (req.raw !== undefined) {
    body = req.raw
    headers['content-type'] = req.contentType ?? 'application/json'
  }
  const res = await fetch(`${w.apiUrl}${path}`, { method, headers, body })
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = text ? JSON.parse(text) : undefined
  } catch {
    parsed = undefined
  }
  return { status: res.status, headers: res.headers, body: parsed, text }
}

/** Asserts E2B's error contract: exactly `{code, message}`, code equal to the status. */
export function expectApiError(res: ApiResponse, status: number, message?: RegExp): void {
  const where = `${res.status} ${res.text}`
  expect(res.status, where).toBe(status)
  expect(res.headers.get('content-type'), where).toMatch(/^application\/json/)
  expect(res.body, where).toEqual({ code: status, message: expect.any(String) })
  const text = (res.body as { message: string }).message
  expect(text.length, where).toBeGreaterThan(0)
  if (message) expect(text, where).toMatch(message)
}

export interface SandboxDetail {
  sandboxID: string
  templateID: string
  state: string
  startedAt: string
  endAt: string
  metadata: Record<string, string>
  envdAccessToken?: string
  [k: string]: unknown
}

/** GET /sandboxes/{id}, which must answer 200. */
export async function detail(w: ApiTarget, id: string): Promise<SandboxDetail> {
  const res = await api(w, 'GET', `/sandboxes/${id}`)
  expect(res.status, res.text).toBe(200)
  return res.body as SandboxDetail
}

/** Every listed sandbox of the fixture's team (all pages), id → endAt. */
export async function listedEndAts(
  w: WarrenFixture,
  key: string = w.apiKey,
): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  let token: string | null = null
  do {
    const q: string = token ? `&nextToken=${encodeURIComponent(token)}` : ''
    const res = await api(w, 'GET', `/v2/sandboxes?state=running,paused&limit=100${q}`, { key })
    expect(res.status, res.text).toBe(200)
    for (const s of res.body as Array<{ sandboxID: string; endAt: string }>) {
      expect(out.has(s.sandboxID), `listed twice: ${s.sandboxID}`).toBe(false)
      out.set(s.sandboxID, s.endAt)
    }
    token = res.headers.get('x-next-token')
  } while (token)
  return out
}

/** Polls `check` until it holds (or throws with `what` after `ms`). */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 5000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not reached within ${ms} ms: ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/**
 * A fixed wait, for tests where time passing is the point (a deadline, a rate,
 * something that must not happen); to wait for something to happen, use `eventually`.
 */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)))
