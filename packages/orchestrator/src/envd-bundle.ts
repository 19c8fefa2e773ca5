import { createHash } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type OrchestratorConfig, WarrenError } from '@warren/shared'
import { run } from './exec.js'
import { mountsUnder, unmount } from './runtime/overlay.js'
import { sandboxPaths } from './sandboxes/record.js'

/** Where the built envd bundle is (WARREN_ENVD_DIR, or this checkout's build). */
export function envdSourceDir(cfg: OrchestratorConfig): string {
  return cfg.envdDir ?? fileURLToPath(new URL('../../envd/dist/bundle', import.meta.url))
}

/** The version of the envd bundle in `dir`; undefined when there is none. */
export function envdVersionAt(dir: string): string | undefined {
  const file = join(dir, 'version.json')
  if (!existsSync(file)) return undefined
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
}

export interface EnvdBundle {
  /** The directory mounted read-only at /opt/warren/envd. */
  dir: string
  version: string
}

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort()
}

/**
 * envd's copies live on a small tmpfs of their own at <data>/envd: a bind
 * mount shows its source's path within its filesystem in the sandbox's
 * mountinfo, and from this filesystem that is `/<version>-<hash>`, not
 * where Warren keeps its data. It outlives the node (running sandboxes read
 * from it) and is released when the node stops with no sandboxes.
 */
export async function mountEnvdStore(cfg: OrchestratorConfig): Promise<void> {
  const root = join(cfg.dataDir, 'envd')
  mkdirSync(root, { recursive: true, mode: 0o711 })
  if (mountsUnder(root).includes(root)) return
  await run('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=711,nosuid,nodev', 'warren-envd', root])
}

export async function releaseEnvdStore(cfg: OrchestratorConfig): Promise<void> {
  const root = join(cfg.dataDir, 'envd')
  if (mountsUnder(root).includes(root)) await unmount(root)
}

/**
 * envd as the sandboxes get it: a content-addressed copy of the built bundle
 * in the envd store. Sandboxes keep the copy they started with, so
 * rebuilding or upgrading envd never pulls files (lazily loaded chunks, native
 * addons) from under a running envd; new sandboxes get the new one.
 */
export function installEnvd(cfg: OrchestratorConfig): EnvdBundle {
  const source = envdSourceDir(cfg)
  const version = envdVersionAt(source)
  if (version === undefined) {
    throw new WarrenError('unavailable', `envd bundle not found in ${source} (run the build)`)
  }
  const hash = createHash('sha256')
  for (const f of files(source)) {
    hash.update(relative(source, f))
    hash.update(readFileSync(f))
  }
  const dir = join(cfg.dataDir, 'envd', `${version}-${hash.digest('hex').slice(0, 12)}`)
  if (!existsSync(dir)) {
    const tmp = `${dir}.tmp-${process.pid}`
    rmSync(tmp, { recursive: true, force: true })
    cpSync(source, tmp, { recursive: true })
    renameSync(tmp, dir)
  }
  return { dir, version }
}

/** Copies no running sandbox uses any more (the newest few are kept). */
export function pruneEnvd(cfg: OrchestratorConfig, inUse: Set<string>, keep = 3): void {
  const root = join(cfg.dataDir, 'envd')
  if (!existsSync(root)) return
  const dirs = readdirSync(root)
    .map((name) => join(root, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  for (const dir of dirs.slice(keep))
    if (!inUse.has(dir)) rmSync(dir, { recursive: true, force: true })
}

/** The envd copy a sandbox's bundle mounts (from its config.json), if any. */
export function envdDirOf(dataDir: string, sandboxId: string): string {
  try {
    const spec = JSON.parse(
      readFileSync(join(sandboxPaths(dataDir, sandboxId).bundle, 'config.json'), 'utf8'),
    ) as {
      mounts?: Array<{ destination: string; source: string }>
    }
    return spec.mounts?.find((m) => m.destination === '/opt/warren/envd')?.source ?? ''
  } catch {
    return ''
  }
}
