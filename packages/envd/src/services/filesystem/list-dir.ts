import { type Dirent, readdirSync, realpathSync, statSync } from 'node:fs'
import { posix } from 'node:path'
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect'
import type { Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import { fsConnectError } from '../../fs-errors.js'
import { type OwnerNames, ownerNames } from '../../users.js'
import { requestUser, userPath } from '../request-user.js'
import type { FilesystemDeps } from './deps.js'
import { type EntryInfoInit, entryInfo } from './entry-info.js'

/** Entries below `dir` up to `depth` levels; symlinked directories are not entered. */
function walk(
  dir: string,
  shown: string,
  depth: number,
  out: EntryInfoInit[],
  names: OwnerNames,
  top: boolean,
): void {
  let children: Dirent[]
  try {
    children = readdirSync(dir, { withFileTypes: true })
  } catch (err) {
    if (top) throw err
    return // an unreadable subdirectory is listed but not entered
  }
  children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const child of children) {
    const real = posix.join(dir, child.name)
    const reported = posix.join(shown, child.name)
    try {
      out.push(entryInfo(real, reported, names))
    } catch {
      continue // vanished between readdir and lstat
    }
    if (depth > 1 && child.isDirectory()) walk(real, reported, depth - 1, out, names, false)
  }
}

export function createListDir(deps: FilesystemDeps): ServiceImpl<typeof Filesystem>['listDir'] {
  return (req, ctx) => {
    const user = requestUser(ctx, deps.state)
    const path = userPath(req.path, user, deps.state)
    const depth = req.depth || 1
    const entries: EntryInfoInit[] = []
    try {
      const real = realpathSync(path)
      if (!statSync(real).isDirectory()) {
        throw new ConnectError(`path is not a directory: ${path}`, Code.InvalidArgument)
      }
      walk(real, path, depth, entries, ownerNames(), true)
    } catch (err) {
      throw fsConnectError(err, `list '${path}'`)
    }
    return { entries }
  }
}
