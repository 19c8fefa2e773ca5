import { chownSync, mkdirSync, statSync } from 'node:fs'
import { posix } from 'node:path'
import type { User } from './users.js'

/** The error for a path whose parent is a file: the write cannot go there. */
export class NotADirectoryError extends Error {
  readonly code = 'ENOTDIR'
  constructor(readonly path: string) {
    super(`path is a file: ${path}`)
  }
}

/**
 * `mkdir -p` as E2B envd does it: envd acts as root, and every directory it
 * creates (mode 0755) is handed to `user`; directories that exist are left
 * as they are. Two requests creating the same directory at once both succeed.
 */
export function ensureDirs(dir: string, user: User): void {
  const chain: string[] = []
  for (let d = posix.resolve(dir); d !== '/'; d = posix.dirname(d)) chain.unshift(d)
  for (const d of chain) {
    const st = statSync(d, { throwIfNoEntry: false })
    if (st) {
      if (!st.isDirectory()) throw new NotADirectoryError(d)
      continue
    }
    try {
      mkdirSync(d, 0o755)
    } catch (err) {
      // Made meanwhile by a concurrent request: fine if it is a directory.
      if ((err as { code?: string }).code !== 'EEXIST') throw err
      if (!statSync(d).isDirectory()) throw new NotADirectoryError(d)
      continue
    }
    if (envdIsRoot()) chownSync(d, user.uid, user.gid)
  }
}

/**
 * envd is root in its sandbox (it can act anywhere and give files away); a
 * development envd run as someone else keeps what it makes.
 */
export function envdIsRoot(): boolean {
  return process.geteuid?.() === 0
}
