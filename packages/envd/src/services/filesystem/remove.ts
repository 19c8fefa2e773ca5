import { rmSync } from 'node:fs'
import type { ServiceImpl } from '@connectrpc/connect'
import type { Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import { fsConnectError } from '../../fs-errors.js'
import { requestUser, userPath } from '../request-user.js'
import type { FilesystemDeps } from './deps.js'

/**
 * `rm -rf` as E2B envd does it (as root; a path that is not there is already
 * removed). Synchronous, so removing a huge tree holds the event loop for its
 * duration.
 */
export function createRemove(deps: FilesystemDeps): ServiceImpl<typeof Filesystem>['remove'] {
  return (req, ctx) => {
    const user = requestUser(ctx, deps.state)
    const path = userPath(req.path, user, deps.state)
    try {
      rmSync(path, { recursive: true, force: true })
    } catch (err) {
      throw fsConnectError(err, `remove '${path}'`)
    }
    return {}
  }
}
