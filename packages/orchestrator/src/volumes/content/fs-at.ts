import { constants, type Stats } from 'node:fs'
import { type FileHandle, lstat, mkdir, open } from 'node:fs/promises'
import { type ErrorCode, WarrenError } from '@warren/shared'

/**
 * Files in a volume are reached the way openat(2) would reach them: every
 * name is looked up in a directory this process holds open, through
 * `/proc/self/fd/<fd>/<name>` (the kernel jumps to the open directory
 * itself, not to a path), and directories are opened with O_NOFOLLOW. A
 * sandbox that mounts the volume may swap any directory for a symlink at
 * any moment; no lookup here ever follows one, so nothing outside the
 * volume can be named, read, written or removed, whatever the timing.
 */

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants

/** The name `name` inside the open directory `dir`, as a path the kernel resolves race-free. */
export function at(dir: FileHandle, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dir.fd}` : `/proc/self/fd/${dir.fd}/${name}`
}

/** Opens a directory entry of `dir` as a directory, never through a symlink. */
export function openDirAt(dir: FileHandle, name: string): Promise<FileHandle> {
  return open(at(dir, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
}

/**
 * Opens an entry of `dir` for fstat/fchown/fchmod: never a symlink (ELOOP),
 * never blocking on a FIFO a sandbox left there.
 */
export function openEntryAt(dir: FileHandle, name: string): Promise<FileHandle> {
  return open(at(dir, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
}

export function lstatAt(dir: FileHandle, name: string): Promise<Stats> {
  return lstat(at(dir, name))
}

/** Owner and mode for what an operation creates, on the host (uids already shifted). */
export interface HostOwner {
  uid: number
  gid: number
}

/**
 * The directory `names` lead to from `root`, open. Each step is a real
 * directory (a symlink or file on the way is an error). With `create`,
 * missing directories are made, owned by `create.owner` with mode 0755.
 * The handles on the way are closed; the caller closes the one returned.
 */
export async function walkDirs(
  root: FileHandle,
  names: string[],
  create?: { owner: HostOwner },
): Promise<FileHandle> {
  let cur = root
  try {
    for (const name of names) {
      let next: FileHandle
      try {
        next = await openDirAt(cur, name)
      } catch (err) {
        if (!create || errnoOf(err) !== 'ENOENT') throw err
        await mkdir(at(cur, name), 0o755).catch((e: unknown) => {
          if (errnoOf(e) !== 'EEXIST') throw e
        })
        next = await openDirAt(cur, name)
        await next.chown(create.owner.uid, create.owner.gid)
        await next.chmod(0o755)
      }
      if (cur !== root) await cur.close()
      cur = next
    }
    return cur === root ? await open(at(root), O_RDONLY | O_DIRECTORY) : cur
  } catch (err) {
    if (cur !== root) await cur.close().catch(() => {})
    throw err
  }
}

export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

const BY_ERRNO: Record<string, [ErrorCode, string]> = {
  ENOENT: ['not_found', 'no such file or directory'],
  // Also what opening a symlink to a directory as a directory, without following it, gives.
  ENOTDIR: ['invalid_argument', 'not a directory (the volume API follows no symlinks)'],
  EISDIR: ['conflict', 'is a directory'],
  EEXIST: ['conflict', 'already exists'],
  ENOTEMPTY: ['conflict', 'directory not empty'],
  ELOOP: ['invalid_argument', 'is or goes through a symlink, which the volume API does not follow'],
  ENXIO: ['invalid_argument', 'is not a file or directory'],
  ENAMETOOLONG: ['invalid_argument', 'name too long'],
  EINVAL: ['invalid_argument', 'invalid argument'],
  ENOSPC: ['no_space', 'the volume is full'],
  EDQUOT: ['no_space', 'the volume is full'],
  EMLINK: ['conflict', 'too many links'],
}

/** A filesystem error as the content API answers it, naming the path the caller gave. */
export function fsError(err: unknown, path: string): WarrenError {
  if (err instanceof WarrenError) return err
  const mapped = BY_ERRNO[errnoOf(err) ?? '']
  if (!mapped) return new WarrenError('internal', `${path}: file operation failed`, { cause: err })
  return new WarrenError(mapped[0], `${path}: ${mapped[1]}`)
}

/** The volume's root, open (a host path Warren chose: the one lookup that needs no care). */
export function openRoot(root: string): Promise<FileHandle> {
  return open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
}

/** Runs `fn` with the volume's root open, and closes it after. */
export async function withRoot<T>(root: string, fn: (root: FileHandle) => Promise<T>): Promise<T> {
  const fh = await openRoot(root)
  try {
    return await fn(fh)
  } finally {
    await fh.close()
  }
}
