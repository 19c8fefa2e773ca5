import { mkdirSync, statSync } from 'node:fs'
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect'
import type { Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import { asUser } from '../../as-user.js'
import { fsConnectError } from '../../fs-errors.js'
import { requestUser, userPath } from '../request-user.js'
import type { FilesystemDeps } from './deps.js'
import { entryInfo } from './entry-info.js'

/** mkdir -p as the user (so new directories are theirs); already_exists if it is there. */
export function createMakeDir(deps: FilesystemDeps): ServiceImpl<typeof Filesystem>['makeDir'] {
  return (req, ctx) => {
    const user = requestUser(ctx, deps.state)
    const path = userPath(req.path, user, deps.state)
    return asUser(user, () => {
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
        mkdirSync(path, { recursive: true })
        return { entry: entryInfo(path) }
      } catch (err) {
        throw fsConnectError(err, `make directory '${path}'`)
      }
    })
  }
}
