import { constants, lstatSync, realpathSync, statSync } from 'node:fs'
import { posix } from 'node:path'
import type { MessageInitShape } from '@bufbuild/protobuf'
import { type EntryInfoSchema, FileType } from '@warren/shared/gen/filesystem/filesystem_pb'
import { ownerNames } from '../../users.js'
import { readMetadata } from '../../util/xattr.js'
import { permissionString } from './file-mode.js'

export type EntryInfoInit = MessageInitShape<typeof EntryInfoSchema>

function fileType(mode: number): FileType {
  const type = mode & constants.S_IFMT
  if (type === constants.S_IFREG) return FileType.FILE
  if (type === constants.S_IFDIR) return FileType.DIRECTORY
  if (type === constants.S_IFLNK) return FileType.SYMLINK
  return FileType.UNSPECIFIED
}

/**
 * The EntryInfo of `path` as E2B envd reports it: a symlink is described by
 * its target's type and permission bits, with `symlinkTarget` the fully
 * resolved path; owner and group are names. `reportPath` is the path shown
 * to the client (listings keep the path the client asked for).
 */
export function entryInfo(path: string, reportPath = path, names = ownerNames()): EntryInfoInit {
  const st = lstatSync(path, { bigint: true })
  const mode = Number(st.mode)
  let type = fileType(mode)
  let perm = mode & 0o777
  let symlinkTarget: string | undefined
  if (type === FileType.SYMLINK) {
    try {
      symlinkTarget = realpathSync(path)
    } catch {
      symlinkTarget = path
    }
    try {
      const target = statSync(path)
      type = fileType(target.mode)
      perm = target.mode & 0o777
    } catch {
      type = FileType.UNSPECIFIED
      perm = 0
    }
  }
  return {
    name: posix.basename(reportPath),
    type,
    path: reportPath,
    size: st.size,
    mode: perm,
    permissions: permissionString(mode),
    owner: names.user(Number(st.uid)),
    group: names.group(Number(st.gid)),
    modifiedTime: {
      seconds: st.mtimeNs / 1_000_000_000n,
      nanos: Number(st.mtimeNs % 1_000_000_000n),
    },
    symlinkTarget,
    metadata: readMetadata(path),
  }
}
