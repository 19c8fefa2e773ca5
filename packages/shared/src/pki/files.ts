import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { WarrenError } from '../errors.js'

/**
 * Keys and certificates at rest are root's alone: directories 0700, files
 * 0600, whatever the umask. A credential (a certificate and its key, say) is
 * one directory that appears complete or not at all.
 */

/** Creates `dir` (and its parents) if needed and makes it 0700. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
}

/**
 * Writes `files` (name → content) as the new directory `dir`: into a
 * temporary sibling first, each file 0600 and flushed, then renamed into
 * place in one step. Returns false, writing nothing, when `dir` exists
 * already (another process made it first).
 */
export function writePrivateDir(dir: string, files: Record<string, string>): boolean {
  const parent = dirname(dir)
  ensurePrivateDir(parent)
  const tmp = join(parent, `.${basename(dir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`)
  mkdirSync(tmp, { mode: 0o700 })
  try {
    for (const [name, content] of Object.entries(files)) {
      const fd = openSync(join(tmp, name), 'wx', 0o600)
      try {
        writeSync(fd, content)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
    }
    chmodSync(tmp, 0o700)
    try {
      renameSync(tmp, dir)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return false
      throw err
    }
    return true
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

/**
 * The content of the private file `path`, which is written with `make()`'s
 * content when there is none. Concurrent first calls (two processes on one
 * data directory) agree: the file is written whole under a temporary name
 * and linked into place, which fails if another got there first, so no
 * caller ever reads a file still being written.
 */
export function readOrCreatePrivateFile(path: string, make: () => string): string {
  if (existsSync(path)) return readPrivateFile(path)
  const parent = dirname(path)
  mkdirSync(parent, { recursive: true })
  const tmp = join(
    parent,
    `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  )
  const fd = openSync(tmp, 'wx', 0o600)
  try {
    try {
      writeSync(fd, make())
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    linkSync(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    rmSync(tmp, { force: true })
  }
  return readPrivateFile(path)
}

/**
 * Reads a file that must be private: owned by this user, and neither
 * readable nor writable by anyone else (as ssh insists for its keys).
 */
export function readPrivateFile(path: string): string {
  const st = statSync(path)
  const uid = process.getuid?.()
  if ((uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw new WarrenError(
      'invalid_argument',
      `${path} must be owned by this user and private (chmod 600); it has mode ${(st.mode & 0o777).toString(8)}, owner ${st.uid}`,
    )
  }
  return readFileSync(path, 'utf8')
}
