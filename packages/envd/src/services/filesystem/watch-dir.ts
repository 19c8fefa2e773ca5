import type { MessageInitShape } from '@bufbuild/protobuf'
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect'
import type {
  Filesystem,
  WatchDirResponseSchema,
} from '@warren/shared/gen/filesystem/filesystem_pb'
import { fsConnectError } from '../../fs-errors.js'
import { endOnAbort } from '../../util/end-on-abort.js'
import { EventQueue, keepaliveMs } from '../../util/event-queue.js'
import { requestUser, userPath } from '../request-user.js'
import type { FilesystemDeps } from './deps.js'
import { DirWatcher } from './dir-watcher.js'
import { toFilesystemEvent } from './watch-events.js'
import { checkWatchTarget } from './watch-target.js'

type Response = MessageInitShape<typeof WatchDirResponseSchema>

/** A client that stops reading must not grow envd without bound. */
const MAX_QUEUED = 100_000

export function createWatchDir(deps: FilesystemDeps): ServiceImpl<typeof Filesystem>['watchDir'] {
  return endOnAbort(async function* watchDir(req, ctx) {
    const user = requestUser(ctx, deps.state)
    const path = userPath(req.path, user, deps.state)
    checkWatchTarget(path, req.allowNetworkMounts)
    // Each event counts 1 in the queue's size: its size is the number unread.
    const queue = new EventQueue<Response>()
    const watcher = new DirWatcher(
      path,
      req.recursive,
      (e) => {
        if (queue.bytes >= MAX_QUEUED) {
          queue.fail(new ConnectError('too many unread watch events', Code.ResourceExhausted))
          return
        }
        queue.push(
          { event: { case: 'filesystem', value: toFilesystemEvent(e, req.includeEntry) } },
          1,
        )
      },
      (err) => queue.fail(fsConnectError(err, `watch '${path}'`)),
    )
    try {
      watcher.start()
    } catch (err) {
      throw fsConnectError(err, `watch '${path}'`)
    }
    try {
      yield { event: { case: 'start', value: {} } }
      const ms = keepaliveMs(ctx.requestHeader.get('keepalive-ping-interval'))
      const keepalive = ms
        ? { ms, make: (): Response => ({ event: { case: 'keepalive', value: {} } }) }
        : undefined
      yield* queue.drain(ctx.signal, keepalive)
    } finally {
      watcher.close()
    }
  })
}
