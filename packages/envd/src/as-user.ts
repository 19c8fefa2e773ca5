import type { User } from './users.js'

/**
 * Runs `fn` with the effective uid, gid and groups of `user`, so the kernel
 * applies that user's permissions (and ownership of what gets created) to
 * every path-based file operation inside it.
 *
 * Why this is safe in a Node process: `fn` must be synchronous, so no other
 * JavaScript runs while the identity is switched, and glibc applies set*id
 * calls to every thread. Work already running on the libuv threadpool at that
 * moment also runs with the switched identity, so envd keeps path-based async
 * operations off the threadpool: file data moves through descriptors opened
 * here (permissions are checked at open time), and the only path-based async
 * work left, loading envd's own lazy chunks and getaddrinfo, reads
 * world-readable files (the bundle, /etc/hosts), which every user may read.
 */
export function asUser<T>(user: User, fn: () => T): T {
  if (!canSwitch() || user.uid === 0) return fn()
  const savedGroups = process.getgroups!()
  process.setgroups!(user.groups)
  process.setegid!(user.gid)
  process.seteuid!(user.uid)
  try {
    return fn()
  } finally {
    process.seteuid!(0)
    process.setegid!(0)
    process.setgroups!(savedGroups)
  }
}

let switchable: boolean | undefined

/** Only a root envd (uid 0 in the sandbox's user namespace) can switch. */
export function canSwitch(): boolean {
  switchable ??= typeof process.seteuid === 'function' && process.geteuid!() === 0
  return switchable
}
