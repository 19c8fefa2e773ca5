import type { FileHandle } from 'node:fs/promises'
import { readdir } from 'node:fs/promises'
import { type VolumeEntryStat, WarrenError } from '@warren/shared'
import { displayPath, entryStat, type VolumeScope } from './entry.js'
import { at, errnoOf, fsError, lstatAt, openDirAt, walkDirs, withRoot } from './fs-at.js'

/** A listing is answered in one JSON body: bounded. */
const MAX_ENTRIES = 100_000

/**
 * GET dir: the directory's entries, and theirs down to `depth` levels,
 * sorted by name within each directory. Symlinks are listed, never entered;
 * entries a sandbox removes while the listing runs are skipped.
 */
export function listDir(scope: VolumeScope, names: string[], depth: number) {
  return withRoot(scope.root, async (root) => {
    try {
      const dir = await walkDirs(root, names)
      try {
        const out: VolumeEntryStat[] = []
        await collect(scope, dir, names, depth, out)
        return out
      } finally {
        await dir.close()
      }
    } catch (err) {
      throw fsError(err, displayPath(names))
    }
  })
}

async function collect(
  scope: VolumeScope,
  dir: FileHandle,
  names: string[],
  depth: number,
  out: VolumeEntryStat[],
): Promise<void> {
  for (const name of (await readdir(at(dir))).sort()) {
    const st = await lstatAt(dir, name).catch((err: unknown) => {
      if (errnoOf(err) === 'ENOENT') return undefined
      throw err
    })
    if (!st) continue
    const childNames = [...names, name]
    out.push(await entryStat(scope, st, childNames, dir))
    if (out.length > MAX_ENTRIES)
      throw new WarrenError(
        'invalid_argument',
        `more than ${MAX_ENTRIES} entries: list with a smaller depth`,
      )
    if (depth > 1 && st.isDirectory()) {
      const sub = await openDirAt(dir, name).catch((err: unknown) => {
        // Removed, or swapped for a symlink or file since the lstat: skipped.
        if (['ENOENT', 'ELOOP', 'ENOTDIR'].includes(errnoOf(err) ?? '')) return undefined
        throw err
      })
      if (!sub) continue
      try {
        await collect(scope, sub, childNames, depth - 1, out)
      } finally {
        await sub.close()
      }
    }
  }
}
