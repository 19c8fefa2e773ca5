import { constants } from 'node:fs'

const S_ISUID = 0o4000
const S_ISGID = 0o2000
const S_ISVTX = 0o1000

/**
 * Go's os.FileMode.String() for a Unix st_mode, which E2B envd reports as
 * `permissions`: type letters from "dalTLDpSugct?" (only d, L, D, p, S, u, g,
 * c, t occur on Linux), '-' when none, then rwxrwxrwx.
 */
export function permissionString(mode: number): string {
  let prefix = ''
  const type = mode & constants.S_IFMT
  if (type === constants.S_IFDIR) prefix += 'd'
  if (type === constants.S_IFLNK) prefix += 'L'
  if (type === constants.S_IFBLK || type === constants.S_IFCHR) prefix += 'D'
  if (type === constants.S_IFIFO) prefix += 'p'
  if (type === constants.S_IFSOCK) prefix += 'S'
  if (mode & S_ISUID) prefix += 'u'
  if (mode & S_ISGID) prefix += 'g'
  if (type === constants.S_IFCHR) prefix += 'c'
  if (mode & S_ISVTX) prefix += 't'
  const rwx = 'rwxrwxrwx'
  let perms = ''
  for (let i = 0; i < 9; i++) perms += mode & (1 << (8 - i)) ? rwx[i] : '-'
  return (prefix || '-') + perms
}
