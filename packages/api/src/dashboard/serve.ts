import type { Hono } from 'hono'
import type { ApiEnv } from '../http/auth.js'
import { type Asset, dashboardDir, loadAssets } from './assets.js'

/**
 * Only this origin's files and API; nothing inline, no framing. The page
 * holds an API key in its storage: an injected script is what this keeps out.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

/**
 * The web dashboard at /dashboard: static files of the build, no auth of
 * their own (they hold no data); everything they show comes from the API
 * with the key the user signs in with.
 */
export function registerDashboard(app: Hono<ApiEnv>, dir = dashboardDir()): void {
  const assets = dir === undefined ? undefined : loadAssets(dir)

  const send = (asset: Asset, ifNoneMatch: string | undefined) => {
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      'content-type': asset.type,
      etag: asset.etag,
      // The entry page is revalidated each time so that a new build's
      // asset names are picked up; the hashed assets are cached for good.
      'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    }
    if (ifNoneMatch === asset.etag) return new Response(null, { status: 304, headers })
    return new Response(asset.body, { status: 200, headers })
  }

  const handler = (path: string, ifNoneMatch: string | undefined) => {
    if (!assets)
      return Response.json(
        { code: 503, message: 'the dashboard was not built (npm run build)' },
        { status: 503 },
      )
    const asset = assets.get(path || 'index.html')
    if (!asset) return Response.json({ code: 404, message: 'not found' }, { status: 404 })
    return send(asset, ifNoneMatch)
  }

  app.get('/dashboard', (c) => c.redirect('/dashboard/', 301))
  app.get('/dashboard/*', (c) =>
    handler(c.req.path.slice('/dashboard/'.length), c.req.header('if-none-match')),
  )
}
