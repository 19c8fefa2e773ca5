import { lchown } from 'node:fs/promises'
import { WarrenError } from '@warren/shared'
import { displayPath, entryStat, type VolumeScope } from './entry.js'
import { at, fsError, lstatAt, openEntryAt, walkDirs, withRoot } from './fs-at.js'

export interface Metadata {
  uid?: number | undefined
  gid?: number | undefined
  mode?: number | undefined
}

/**
 * PATCH path: owner and/or mode of an entry, through a handle on the entry
 * itself (fchown, fchmod), never a path a sandbox could redirect. A
 * symlink's owner can change (lchown); it has no mode of its own.
 */
export function updateMetadata(scope: VolumeScope, names: string[], m: Metadata) {
  const where = displayPath(names)
  const uid = m.uid === undefined ? -1 : scope.uidBase + m.uid
  const gid = m.gid === undefined ? -1 : scope.uidBase + m.gid
  return withRoot(scope.root, async (root) => {
    try {
      if (!names.length) {
        if (uid !== -1 || gid !== -1) await root.chown(uid, gid)
        if (m.mode !== undefined) await root.chmod(m.mode)
        return await entryStat(scope, await root.stat(), names)
      }
      const parent = await walkDirs(root, names.slice(0, -1))
      const name = names.at(-1)!
      try {
        if ((await lstatAt(parent, name)).isSymbolicLink()) {
          if (m.mode !== undefined)
            throw new WarrenError('invalid_argument', `${where}: a symlink has no mode of its own`)
          await lchown(at(parent, name), uid, gid)
          return await entryStat(scope, await lstatAt(parent, name), names, parent)
        }
        const fh = await openEntryAt(parent, name)
        try {
          if (uid !== -1 || gid !== -1) await fh.chown(uid, gid)
          if (m.mode !== undefined) await fh.chmod(m.mode)
          return await entryStat(scope, await fh.stat(), names)
        } finally {
          await fh.close()
        }
      } finally {
        await parent.close()
      }
    } catch (err) {
      throw fsError(err, where)
    }
  })
}
