// The dashboard's static files: content types, caching (entry page
// revalidated, hashed assets immutable), the CSP on every answer, 304 on a
// matching ETag, and nothing outside the build reachable by any path.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Hono } from 'hono'
import { afterAll, describe, expect, it } from 'vitest'
import type { ApiEnv } from '../http/auth.js'
import { DASHBOARD_CSP, registerDashboard } from './serve.js'

const dir = mkdtempSync(join(tmpdir(), 'warren-dashboard-'))
mkdirSync(join(dir, 'assets'))
writeFileSync(
  join(dir, 'index.html'),
  '<!doctype html><script src="/dashboard/assets/a-1.js"></script>',
)
writeFileSync(join(dir, 'assets', 'a-1.js'), 'console.log(1)')
writeFileSync(join(dir, 'assets', 'a-1.css'), 'body{}')
writeFileSync(join(tmpdir(), 'secret-beside-build.txt'), 'SECRET-OUTSIDE')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const app = new Hono<ApiEnv>()
registerDashboard(app, dir)
const get = (path: string, headers: Record<string, string> = {}) => app.request(path, { headers })

describe('dashboard files', () => {
  it.each([
    ['/dashboard/', 'text/html; charset=utf-8', 'no-cache'],
    ['/dashboard/index.html', 'text/html; charset=utf-8', 'no-cache'],
    [
      '/dashboard/assets/a-1.js',
      'text/javascript; charset=utf-8',
      'public, max-age=31536000, immutable',
    ],
    ['/dashboard/assets/a-1.css', 'text/css; charset=utf-8', 'public, max-age=31536000, immutable'],
  ])('%s: %s, %s, with the CSP', async (path, type, cache) => {
    const res = await get(path)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe(type)
    expect(res.headers.get('cache-control')).toBe(cache)
    expect(res.headers.get('content-security-policy')).toBe(DASHBOARD_CSP)
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    const etag = res.headers.get('etag')!
    expect((await get(path, { 'if-none-match': etag })).status).toBe(304)
  })

  it('redirects /dashboard to /dashboard/', async () => {
    const res = await get('/dashboard')
    expect(res.status).toBe(301)
    expect(res.headers.get('location')).toBe('/dashboard/')
  })

  it.each([
    '/dashboard/missing.js',
    '/dashboard/../secret-beside-build.txt',
    '/dashboard/%2e%2e/secret-beside-build.txt',
    '/dashboard/assets/..%2f..%2fsecret-beside-build.txt',
    '/dashboard//etc/passwd',
  ])('%s: 404, nothing from outside the build', async (path) => {
    const res = await get(path)
    expect(res.status).toBe(404)
    expect(await res.text()).not.toContain('SECRET-OUTSIDE')
  })

  it('answers 503 when the dashboard was not built', async () => {
    const bare = new Hono<ApiEnv>()
    registerDashboard(bare, join(dir, 'nowhere'))
    expect((await bare.request('/dashboard/')).status).toBe(503)
  })
})
