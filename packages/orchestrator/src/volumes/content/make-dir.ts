import { mkdir } from 'node:fs/promises'
import { WarrenError } from '@warren/shared'
import { displayPath, entryStat, hostOwner, type VolumeScope } from './entry.js'
import { at, errnoOf, fsError, lstatAt, openDirAt, walkDirs, withRoot } from './fs-at.js'

export interface MakeDirOptions {
  uid?: number | undefined
  gid?: number | undefined
  mode?: number | undefined
  /** Make missing parents too, and accept a directory that exists (mkdir -p). */
  force?: boolean | undefined
}

/** POST dir: a new directory owned by `uid:gid` (default the sandbox's user), mode 0755 unless given. */
export function makeDir(scope: VolumeScope, names: string[], opts: MakeDirOptions) {
  const where = displayPath(names)
  return withRoot(scope.root, async (root) => {
    if (!names.length) {
      if (opts.force) return entryStat(scope, await root.stat(), names)
      throw new WarrenError('conflict', '/: already exists')
    }
    const owner = hostOwner(scope, opts)
    const name = names.at(-1)!
    try {
      const parent = await walkDirs(root, names.slice(0, -1), opts.force ? { owner } : undefined)
      try {
        try {
          await mkdir(at(parent, name), 0o700)
        } catch (err) {
          if (errnoOf(err) !== 'EEXIST' || !opts.force) throw err
          const st = await lstatAt(parent, name)
          if (!st.isDirectory()) throw err
          return await entryStat(scope, st, names, parent)
        }
        const dir = await openDirAt(parent, name)
        try {
          await dir.chown(owner.uid, owner.gid)
          await dir.chmod(opts.mode ?? 0o755)
          return await entryStat(scope, await dir.stat(), names)
        } finally {
          await dir.close()
        }
      } finally {
        await parent.close()
      }
    } catch (err) {
      throw fsError(err, where)
    }
  })
}
