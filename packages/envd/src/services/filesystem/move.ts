import { lstatSync, renameSync } from 'node:fs'
import { posix } from 'node:path'
import type { ServiceImpl } from '@connectrpc/connect'
import type { Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import { fsConnectError } from '../../fs-errors.js'
import { ensureDirs } from '../../owned-dirs.js'
import { requestUser, userPath } from '../request-user.js'
import type { FilesystemDeps } from './deps.js'
import { entryInfo } from './entry-info.js'

/**
 * rename(2) as E2B envd does it: as root; the destination's missing parent
 * directories are made for the user.
 */
export function createMove(deps: FilesystemDeps): ServiceImpl<typeof Filesystem>['move'] {
  return (req, ctx) => {
    const user = requestUser(ctx, deps.state)
    const source = userPath(req.source, user, deps.state)
    const destination = userPath(req.destination, user, deps.state)
    try {
      lstatSync(source)
      ensureDirs(posix.dirname(destination), user)
      renameSync(source, destination)
      return { entry: entryInfo(destination) }
    } catch (err) {
      throw fsConnectError(err, `move '${source}' to '${destination}'`)
    }
  }
}
