import { randomUUID } from 'node:crypto'
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect'
import type { Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import { fsConnectError } from '../../fs-errors.js'
import { requestUser, userPath } from '../request-user.js'
import type { FilesystemDeps } from './deps.js'
import { DirWatcher } from './dir-watcher.js'
import { type FilesystemEventInit, toFilesystemEvent } from './watch-events.js'
import { checkWatchTarget } from './watch-target.js'

/** Events a polling watcher keeps between polls; the oldest are dropped beyond it. */
const MAX_BUFFERED = 10_000

interface Polled {
  watcher: DirWatcher
  events: FilesystemEventInit[]
}

/** Polling watchers (CreateWatcher / GetWatcherEvents / RemoveWatcher) by id. */
export class WatcherStore {
  readonly byId = new Map<string, Polled>()

  closeAll(): void {
    for (const w of this.byId.values()) w.watcher.close()
    this.byId.clear()
  }

  get(id: string): Polled {
    const w = this.byId.get(id)
    if (!w) throw new ConnectError(`watcher with id ${id} not found`, Code.NotFound)
    return w
  }
}

export function createCreateWatcher(
  deps: FilesystemDeps,
): ServiceImpl<typeof Filesystem>['createWatcher'] {
  return (req, ctx) => {
    const user = requestUser(ctx, deps.state)
    const path = userPath(req.path, user, deps.state)
    checkWatchTarget(path, req.allowNetworkMounts)
    const id = randomUUID()
    const polled: Polled = { watcher: undefined as unknown as DirWatcher, events: [] }
    polled.watcher = new DirWatcher(
      path,
      req.recursive,
      (e) => {
        polled.events.push(toFilesystemEvent(e, req.includeEntry))
        if (polled.events.length > MAX_BUFFERED) polled.events.shift()
      },
      () => {
        polled.watcher.close()
      },
    )
    try {
      polled.watcher.start()
    } catch (err) {
      throw fsConnectError(err, `watch '${path}'`)
    }
    deps.watchers.byId.set(id, polled)
    return { watcherId: id }
  }
}

export function createGetWatcherEvents(
  deps: FilesystemDeps,
): ServiceImpl<typeof Filesystem>['getWatcherEvents'] {
  return (req) => {
    const w = deps.watchers.get(req.watcherId)
    return { events: w.events.splice(0) }
  }
}

export function createRemoveWatcher(
  deps: FilesystemDeps,
): ServiceImpl<typeof Filesystem>['removeWatcher'] {
  return (req) => {
    const w = deps.watchers.get(req.watcherId)
    w.watcher.close()
    deps.watchers.byId.delete(req.watcherId)
    return {}
  }
}
