import type { ConnectRouter } from '@connectrpc/connect'
import { Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import type { FilesystemDeps } from './deps.js'
import { createListDir } from './list-dir.js'
import { createMakeDir } from './make-dir.js'
import { createMove } from './move.js'
import { createRemove } from './remove.js'
import { createStat } from './stat.js'
import { createWatchDir } from './watch-dir.js'
import { createCreateWatcher, createGetWatcherEvents, createRemoveWatcher } from './watchers.js'

export function registerFilesystemService(router: ConnectRouter, deps: FilesystemDeps): void {
  router.service(Filesystem, {
    stat: createStat(deps),
    makeDir: createMakeDir(deps),
    move: createMove(deps),
    listDir: createListDir(deps),
    remove: createRemove(deps),
    watchDir: createWatchDir(deps),
    createWatcher: createCreateWatcher(deps),
    getWatcherEvents: createGetWatcherEvents(deps),
    removeWatcher: createRemoveWatcher(deps),
  })
}
