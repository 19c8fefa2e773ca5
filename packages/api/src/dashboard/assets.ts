import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, extname, join, relative, sep } from 'node:path'

// The dashboard's built files (packages/dashboard/dist, made by `npm run
// build`), read once into memory: a few tens of kilobytes, served by the
// API on its own port. Nothing is read from disk per request, so no request
// path can reach a file outside the build.

export interface Asset {
  body: Uint8Array
  type: string
  etag: string
  /** Vite names built assets by their content hash: such a file never changes. */
  immutable: boolean
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
}

/** Where the build put the dashboard, or undefined when it was not built. */
export function dashboardDir(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('@warren/dashboard/package.json')
    const dir = join(dirname(pkg), 'dist')
    return existsSync(join(dir, 'index.html')) ? dir : undefined
  } catch {
    return undefined
  }
}

/**
 * Every file of the build by its URL path under /dashboard/ ('index.html',
 * 'assets/x.js'); undefined when the directory holds no build.
 */
export function loadAssets(dir: string): Map<string, Asset> | undefined {
  if (!existsSync(join(dir, 'index.html'))) return undefined
  const assets = new Map<string, Asset>()
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      if (statSync(path).isDirectory()) walk(path)
      else {
        const rel = relative(dir, path).split(sep).join('/')
        const body = readFileSync(path)
        assets.set(rel, {
          body,
          type: TYPES[extname(name)] ?? 'application/octet-stream',
          etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
          immutable: rel.startsWith('assets/'),
        })
      }
    }
  }
  walk(dir)
  return assets
}
