import { statSync } from 'node:fs'
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect'
import type { Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import { fsConnectError } from '../../fs-errors.js'
import { ensureDirs } from '../../owned-dirs.js'
import { requestUser, userPath } from '../request-user.js'
import type { FilesystemDeps } from './deps.js'
import { entryInfo } from './entry-info.js'

/**
 * `mkdir -p` as E2B envd does it: as root, anywhere; the directories made
 * belong to the user. already_exists if the directory is there.
 */
export function createMakeDir(deps: FilesystemDeps): ServiceImpl<typeof Filesystem>['makeDir'] {
  return (req, ctx) => {
    const user = requestUser(ctx, deps.state)
    const path = userPath(req.path, user, deps.state)
    let existing: ReturnType<typeof statSync> | undefined
    try {
      existing = statSync(path, { throwIfNoEntry: false })
    } catch (err) {
      throw fsConnectError(err, `stat '${path}'`)
    }
    if (existing?.isDirectory()) {
      throw new ConnectError(`directory already exists: ${path}`, Code.AlreadyExists)
    }
    if (existing) {
      throw new ConnectError(
        `path already exists but it is not a directory: ${path}`,
        Code.InvalidArgument,
      )
    }
    try {
      ensureDirs(path, user)
      return { entry: entryInfo(path) }
    } catch (err) {
      throw fsConnectError(err, `make directory '${path}'`)
    }
  }
}
