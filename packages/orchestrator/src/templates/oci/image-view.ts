import { execFileSync } from 'node:child_process'
import { readFileSync, readlinkSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { WarrenError } from '@warren/shared'
import { lstatOrNull } from './layer-fs.js'

export interface Found {
  /** The path inside the image, symlinks resolved. */
  path: string
  /** Where it is on the host: in the topmost layer that has it. */
  abs: string
  st: Stats
}

/**
 * Reads an image's merged tree from its unpacked layers (top first) without
 * mounting it: whiteouts and opaque directories hide what is below them, as
 * in overlayfs. Symlinks are resolved inside the image, as a chroot would
 * (`..` stops at its root); the host's own files are never reached, since
 * every host path is built from components checked with lstat.
 */
export class ImageView {
  private readonly opaque = new Map<string, boolean>()

  constructor(private readonly roots: string[]) {}

  /** The entry at `path` (symlinks followed, the last one too unless `follow` is false). */
  stat(path: string, follow = true): Found | undefined {
    const parts = this.resolve(path, follow)
    const found = parts && this.entry(parts)
    return found && { path: `/${parts.join('/')}`, abs: found.abs, st: found.st }
  }

  readFile(path: string): Buffer | undefined {
    const found = this.stat(path)
    return found?.st.isFile() ? readFileSync(found.abs) : undefined
  }

  /**
   * `path` with every directory on the way resolved (the last component kept
   * as named), or undefined when a directory on the way is missing.
   */
  resolveParent(path: string): string | undefined {
    const parts = split(path)
    const name = parts.pop()
    if (!name) return '/'
    const dir = this.resolve(`/${parts.join('/')}`, true)
    return dir ? `/${[...dir, name].join('/')}` : undefined
  }

  private resolve(path: string, followLast: boolean): string[] | undefined {
    let todo = split(path)
    let done: string[] = []
    for (let hops = 0; todo.length > 0; ) {
      const part = todo.shift()!
      if (part === '..') {
        done.pop()
        continue
      }
      const candidate = [...done, part]
      const found = this.entry(candidate)
      if (!found) return todo.length === 0 ? candidate : undefined
      if (found.st.isSymbolicLink() && (todo.length > 0 || followLast)) {
        if (++hops > 40) throw new WarrenError('invalid_argument', `too many symlinks at ${path}`)
        const target = readlinkSync(found.abs)
        if (target.startsWith('/')) done = []
        todo = [...split(target), ...todo]
        continue
      }
      if (todo.length > 0 && !found.st.isDirectory()) return undefined
      done = candidate
    }
    return done
  }

  /** The merged entry for `parts`, whose ancestors are directories in the merged view. */
  private entry(parts: string[]): { abs: string; st: Stats } | undefined {
    for (const root of this.roots) {
      let cur = root
      let hidesBelow = false
      for (let i = 0; i < parts.length; i++) {
        const abs = join(cur, parts[i]!)
        const st = lstatOrNull(abs)
        if (!st) break
        if (st.isCharacterDevice() && st.rdev === 0) return undefined
        if (i === parts.length - 1) return { abs, st }
        if (!st.isDirectory()) return undefined
        if (this.isOpaque(abs)) hidesBelow = true
        cur = abs
      }
      if (hidesBelow) return undefined
    }
    return undefined
  }

  private isOpaque(dir: string): boolean {
    let value = this.opaque.get(dir)
    if (value === undefined) {
      try {
        const out = execFileSync(
          'getfattr',
          ['-h', '--only-values', '-n', 'trusted.overlay.opaque', dir],
          {
            stdio: ['ignore', 'pipe', 'ignore'],
          },
        )
        value = out.toString() === 'y'
      } catch {
        value = false
      }
      this.opaque.set(dir, value)
    }
    return value
  }
}

function split(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.')
}
