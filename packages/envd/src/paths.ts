import { posix } from 'node:path'

/**
 * Resolves a client path the way E2B envd does: `~` and `~/x` expand to the
 * user's home; relative paths (and the empty path) resolve against the
 * default workdir set by /init, else the user's home. The result is absolute
 * and normalised (no `..` left), but symlinks are not followed.
 */
export function resolvePath(path: string, home: string, workdir?: string): string {
  let p = path
  if (p === '~') p = home
  else if (p.startsWith('~/')) p = posix.join(home, p.slice(2))
  const base = workdir || home
  return posix.resolve(base, p)
}
