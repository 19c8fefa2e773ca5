import { displayPath, entryStat, type VolumeScope } from './entry.js'
import { fsError, lstatAt, walkDirs, withRoot } from './fs-at.js'

/** GET path: one entry (a symlink is described, not followed). */
export function statEntry(scope: VolumeScope, names: string[]) {
  return withRoot(scope.root, async (root) => {
    try {
      if (!names.length) return await entryStat(scope, await root.stat(), names)
      const parent = await walkDirs(root, names.slice(0, -1))
      try {
        return await entryStat(scope, await lstatAt(parent, names.at(-1)!), names, parent)
      } finally {
        await parent.close()
      }
    } catch (err) {
      throw fsError(err, displayPath(names))
    }
  })
}
