import type { ServiceImpl } from '@connectrpc/connect'
import type { Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import { fsConnectError } from '../../fs-errors.js'
import { requestUser, userPath } from '../request-user.js'
import type { FilesystemDeps } from './deps.js'
import { entryInfo } from './entry-info.js'

export function createStat(deps: FilesystemDeps): ServiceImpl<typeof Filesystem>['stat'] {
  return (req, ctx) => {
    const user = requestUser(ctx, deps.state)
    const path = userPath(req.path, user, deps.state)
    try {
      return { entry: entryInfo(path) }
    } catch (err) {
      throw fsConnectError(err, `stat '${path}'`)
    }
  }
}
