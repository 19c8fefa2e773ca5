import { statfsSync, statSync } from 'node:fs'
import { Code, ConnectError } from '@connectrpc/connect'
import { asUser } from '../../as-user.js'
import { fsConnectError } from '../../fs-errors.js'
import type { User } from '../../users.js'

/** statfs magic numbers of network filesystems (linux/magic.h), where inotify is unreliable. */
const NETWORK_FS = new Set([0x6969, 0xff534d42, 0x517b, 0xfe534d42, 0x65735546])

/** Checks what WatchDir and CreateWatcher may watch: a directory, not on a network mount unless allowed. */
export function checkWatchTarget(path: string, user: User, allowNetworkMounts: boolean): void {
  asUser(user, () => {
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
      throw new ConnectError(
        `cannot watch path on network filesystem: ${path}`,
        Code.InvalidArgument,
      )
    }
  })
}
