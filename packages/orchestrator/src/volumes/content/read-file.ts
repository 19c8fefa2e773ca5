import type { FileHandle } from 'node:fs/promises'
import { WarrenError } from '@warren/shared'
import { displayPath, type VolumeScope } from './entry.js'
import { fsError, openEntryAt, openRoot, walkDirs } from './fs-at.js'

/**
 * GET file: a regular file, open, for the caller to stream and close. The
 * handle is on the file itself: what a sandbox does to the path afterwards
 * does not change what is read.
 */
export async function openFile(
  scope: VolumeScope,
  names: string[],
): Promise<{ file: FileHandle; size: number }> {
  const where = displayPath(names)
  if (!names.length) throw new WarrenError('invalid_argument', '/: is a directory')
  const root = await openRoot(scope.root)
  try {
    const parent = await walkDirs(root, names.slice(0, -1))
    try {
      const file = await openEntryAt(parent, names.at(-1)!)
      const st = await file.stat()
      if (!st.isFile()) {
        await file.close()
        throw new WarrenError(
          'invalid_argument',
          `${where}: ${st.isDirectory() ? 'is a directory' : 'is not a regular file'}`,
        )
      }
      return { file, size: st.size }
    } finally {
      await parent.close()
    }
  } catch (err) {
    throw fsError(err, where)
  } finally {
    await root.close()
  }
}
