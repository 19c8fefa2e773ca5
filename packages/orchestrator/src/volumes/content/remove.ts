import type { FileHandle } from 'node:fs/promises'
import { readdir, rmdir, unlink } from 'node:fs/promises'
import { WarrenError } from '@warren/shared'
import { displayPath, type VolumeScope } from './entry.js'
import { at, errnoOf, fsError, lstatAt, openDirAt, walkDirs, withRoot } from './fs-at.js'

/** Deeper trees are left to the sandbox (each level holds a file descriptor). */
const MAX_DEPTH = 256

/**
 * DELETE path: a file or symlink (the link, never its target), or a
 * directory with everything in it. The tree is removed through handles on
 * each directory: a sandbox swapping a directory for a symlink midway makes
 * the removal unlink the symlink, never follow it.
 */
export async function removeEntry(scope: VolumeScope, names: string[]): Promise<void> {
  const where = displayPath(names)
  if (!names.length) throw new WarrenError('invalid_argument', "/: the volume's root stays")
  return withRoot(scope.root, async (root) => {
    try {
      const parent = await walkDirs(root, names.slice(0, -1))
      try {
        const name = names.at(-1)!
        if ((await lstatAt(parent, name)).isDirectory()) await removeTree(parent, name, 0)
        else await unlinkOrTree(parent, name, 0)
      } finally {
        await parent.close()
      }
    } catch (err) {
      throw fsError(err, where)
    }
  })
}

async function unlinkOrTree(dir: FileHandle, name: string, depth: number): Promise<void> {
  try {
    await unlink(at(dir, name))
  } catch (err) {
    // Replaced by a directory since it was looked at.
    if (errnoOf(err) === 'EISDIR') await removeTree(dir, name, depth)
    else if (errnoOf(err) !== 'ENOENT') throw err
  }
}

async function removeTree(parent: FileHandle, name: string, depth: number): Promise<void> {
  if (depth >= MAX_DEPTH)
    throw new WarrenError('conflict', `more than ${MAX_DEPTH} levels deep: remove it in a sandbox`)
  let dir: FileHandle
  try {
    dir = await openDirAt(parent, name)
  } catch (err) {
    // Swapped for a symlink or a file: that goes, whatever it points to stays.
    if (errnoOf(err) === 'ELOOP' || errnoOf(err) === 'ENOTDIR')
      return unlinkOrTree(parent, name, depth)
    if (errnoOf(err) === 'ENOENT') return
    throw err
  }
  try {
    for (const child of await readdir(at(dir))) {
      const st = await lstatAt(dir, child).catch(() => undefined)
      if (!st) continue
      if (st.isDirectory()) await removeTree(dir, child, depth + 1)
      else await unlinkOrTree(dir, child, depth + 1)
    }
  } finally {
    await dir.close()
  }
  await rmdir(at(parent, name)).catch((err: unknown) => {
    if (errnoOf(err) !== 'ENOENT') throw err
  })
}
