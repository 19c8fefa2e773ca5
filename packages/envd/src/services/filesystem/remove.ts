import { rmSync } from 'node:fs'
import type { ServiceImpl } from '@connectrpc/connect'
import type { Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import { asUser } from '../../as-user.js'
import { fsConnectError } from '../../fs-errors.js'
import { requestUser, userPath } from '../request-user.js'
import type { FilesystemDeps } from './deps.js'

/**
 * rm -r as the user. It is synchronous (the identity switch requires it), so
 * removing a huge tree holds the event loop for its duration.
 */
export function createRemove(deps: FilesystemDeps): ServiceImpl<typeof Filesystem>['remove'] {
  return (req, ctx) => {
    const user = requestUser(ctx, deps.state)
    const path = userPath(req.path, user, deps.state)
    try {
      asUser(user, () => rmSync(path, { recursive: true }))
    } catch (err) {
      throw fsConnectError(err, `remove '${path}'`)
    }
    return {}
  }
}
