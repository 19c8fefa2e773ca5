import { statfsSync, statSync } from 'node:fs'
import { Code, ConnectError } from '@connectrpc/connect'
import { fsConnectError } from '../../fs-errors.js'

/** statfs magic numbers of network filesystems (linux/magic.h), where inotify is unreliable. */
const NETWORK_FS = new Set([0x6969, 0xff534d42, 0x517b, 0xfe534d42, 0x65735546])

/** Checks what WatchDir and CreateWatcher may watch: a directory, not on a network mount unless allowed. */
export function checkWatchTarget(path: string, allowNetworkMounts: boolean): void {
  let isDir: boolean
  try {
    isDir = statSync(path).isDirectory()
  } catch (err) {
    throw fsConnectError(err, `watch '${path}'`)
  }
  if (!isDir) throw new ConnectError(`path ${path} is not a directory`, Code.InvalidArgument)
  if (allowNetworkMounts) return
  const type = Number(statfsSync(path).type) >>> 0
  if (NETWORK_FS.has(type)) {
    throw new ConnectError(`cannot watch path on network filesystem: ${path}`, Code.InvalidArgument)
  }
}
