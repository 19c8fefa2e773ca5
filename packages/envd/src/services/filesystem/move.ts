import { lstatSync, mkdirSync, renameSync } from 'node:fs'
import { posix } from 'node:path'
import type { ServiceImpl } from '@connectrpc/connect'
import type { Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import { asUser } from '../../as-user.js'
import { fsConnectError } from '../../fs-errors.js'
import { requestUser, userPath } from '../request-user.js'
import type { FilesystemDeps } from './deps.js'
import { entryInfo } from './entry-info.js'

/** rename(2) as the user, creating the destination's parent directories. */
export function createMove(deps: FilesystemDeps): ServiceImpl<typeof Filesystem>['move'] {
  return (req, ctx) => {
    const user = requestUser(ctx, deps.state)
    const source = userPath(req.source, user, deps.state)
    const destination = userPath(req.destination, user, deps.state)
    return asUser(user, () => {
      try {
        lstatSync(source)
        mkdirSync(posix.dirname(destination), { recursive: true })
        renameSync(source, destination)
        return { entry: entryInfo(destination) }
      } catch (err) {
        throw fsConnectError(err, `move '${source}' to '${destination}'`)
      }
    })
  }
}
