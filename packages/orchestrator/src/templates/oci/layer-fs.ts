import { lstatSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { WarrenError } from '@warren/shared'
import { CommandError, run } from '../../exec.js'

/** lstat, or undefined when nothing is there. */
export function lstatOrNull(path: string): Stats | undefined {
  try {
    return lstatSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * True when every ancestor of `rel` inside `root` is a real directory (no
 * symlink, nothing else), so a path operation on `rel` cannot leave `root`.
 */
export function confined(root: string, rel: string): boolean {
  const parts = rel.split('/').filter(Boolean)
  let cur = root
  for (const part of parts.slice(0, -1)) {
    cur = join(cur, part)
    if (!lstatOrNull(cur)?.isDirectory()) return false
  }
  return true
}

/**
 * Creates overlayfs whiteouts (character devices 0/0) at these paths below
 * `root`. Node cannot mknod; one xargs runs mknod for all of them. Paths go
 * as `./path` so a name starting with `-` is never read as an option.
 */
export async function makeWhiteouts(root: string, rels: string[]): Promise<void> {
  if (rels.length === 0) return
  const input = rels.map((r) => `./${r}\0`).join('')
  try {
    await run('xargs', ['-0', '-I{}', 'mknod', '{}', 'c', '0', '0'], { cwd: root, input })
  } catch (err) {
    throw new WarrenError('internal', 'cannot create overlay whiteouts', { cause: err })
  }
}

export interface XattrRecord {
  /** Relative to the layer root; '' is the root itself. */
  path: string
  name: string
  value: Buffer
}

/**
 * Sets extended attributes with one `setfattr --restore` (Node has no
 * setxattr), never following symlinks. Returns the lines setfattr complained
 * with; the caller decides whether they matter.
 */
export async function setXattrs(root: string, records: XattrRecord[]): Promise<string[]> {
  if (records.length === 0) return []
  const dump = records
    .map(
      (r) => `# file: ${escapePath(r.path || '.')}\n${r.name}=0s${r.value.toString('base64')}\n\n`,
    )
    .join('')
  try {
    await run('setfattr', ['-h', '--restore=-'], { cwd: root, input: dump })
    return []
  } catch (err) {
    if (err instanceof CommandError && err.exitCode !== null) {
      return err.stderr.split('\n').filter(Boolean)
    }
    throw new WarrenError('internal', 'cannot run setfattr (Debian package attr)', { cause: err })
  }
}

/** getfattr's quoting: octal escapes for anything but printable ASCII. */
function escapePath(path: string): string {
  let out = ''
  for (const byte of Buffer.from(path, 'utf8')) {
    out +=
      byte > 0x20 && byte < 0x7f && byte !== 0x5c
        ? String.fromCharCode(byte)
        : `\\${byte.toString(8).padStart(3, '0')}`
  }
  return out
}
