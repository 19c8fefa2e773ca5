import { z } from 'zod'
import { WarrenError } from './errors.js'

/**
 * E2B's volume content API (`/volumecontent/{volumeID}/{dir|path|file}`):
 * one schema per request, shared by the API (which checks a request before
 * it forwards it) and the node (which serves it and trusts nothing). The
 * SDK sends its options as query parameters: numbers in decimal, booleans
 * as `true`/`false`.
 */

/** Owners are in the sandbox's view: 0..65535, what its user namespace maps. */
const id = z.coerce.number().int().min(0).max(65535)
const mode = z.coerce.number().int().min(0).max(0o7777)
const flag = z.enum(['true', 'false']).transform((v) => v === 'true')
const path = z.string().min(1).max(4096)

const pathOnly = z.strictObject({ path })

/** Each operation's query parameters. */
export const volumeContentQueries = {
  /** GET dir: list, `depth` levels deep (1: the directory's own entries). */
  listDir: z.strictObject({ path, depth: z.coerce.number().int().min(1).max(32).optional() }),
  /** POST dir: make a directory; `force` makes missing parents too and accepts one that exists. */
  makeDir: z.strictObject({
    path,
    uid: id.optional(),
    gid: id.optional(),
    mode: mode.optional(),
    force: flag.optional(),
  }),
  /** GET path. */
  stat: pathOnly,
  /** PATCH path (the changes are the JSON body, `volumeMetadataBody`). */
  updateMetadata: pathOnly,
  /** DELETE path: a file, or a directory with everything in it. */
  remove: pathOnly,
  /** GET file. */
  readFile: pathOnly,
  /** PUT file: the body becomes the file; missing parents are made; an existing file is replaced. */
  writeFile: z.strictObject({
    path,
    uid: id.optional(),
    gid: id.optional(),
    mode: mode.optional(),
    force: flag.optional(),
  }),
}

export type VolumeContentOp = keyof typeof volumeContentQueries

/** PATCH path's JSON body. */
export const volumeMetadataBody = z
  .strictObject({
    uid: z.number().int().min(0).max(65535).optional(),
    gid: z.number().int().min(0).max(65535).optional(),
    mode: z.number().int().min(0).max(0o7777).optional(),
  })
  .refine((b) => b.uid !== undefined || b.gid !== undefined || b.mode !== undefined, {
    message: 'name at least one of uid, gid, mode',
  })

const OPS: Record<string, VolumeContentOp> = {
  'GET dir': 'listDir',
  'POST dir': 'makeDir',
  'GET path': 'stat',
  'PATCH path': 'updateMetadata',
  'DELETE path': 'remove',
  'GET file': 'readFile',
  'PUT file': 'writeFile',
}

/** The operation a method and the last path segment (`dir`, `path`, `file`) name, if any. */
export function volumeContentOp(method: string, segment: string): VolumeContentOp | undefined {
  return OPS[`${method} ${segment}`]
}

/** `/volumecontent/{volumeID}/{dir|path|file}`: the volume id and segment, or undefined. */
export function parseVolumeContentPath(
  pathname: string,
): { volumeId: string; segment: string } | undefined {
  const m = /^\/volumecontent\/([^/]+)\/([^/]+)$/.exec(pathname)
  return m ? { volumeId: m[1]!, segment: m[2]! } : undefined
}

/**
 * A path inside a volume as its names, root first: `/a/b`, `a/b` and
 * `/a/./b/` are `['a', 'b']`; `/` is `[]`. `..` is refused rather than
 * resolved, so no request can name anything outside the volume by its text.
 */
export function volumePathSegments(p: string): string[] {
  if (p.includes('\0')) throw new WarrenError('invalid_argument', 'path: contains a NUL byte')
  const names = p.split('/').filter((s) => s !== '' && s !== '.')
  for (const n of names) {
    if (n === '..') throw new WarrenError('invalid_argument', "path: '..' is not allowed")
    if (Buffer.byteLength(n) > 255)
      throw new WarrenError('invalid_argument', 'path: a name is longer than 255 bytes')
  }
  return names
}

/** One entry as E2B's `VolumeEntryStat`; times are ISO 8601, owners in the sandbox's view. */
export interface VolumeEntryStat {
  name: string
  type: 'file' | 'directory' | 'symlink' | 'unknown'
  path: string
  size: number
  mode: number
  uid: number
  gid: number
  atime: string
  mtime: string
  ctime: string
  target?: string
}

/** Zod's first issue as `field: problem`, for content API errors. */
export function describeContentIssue(error: z.ZodError): string {
  const issue = error.issues[0]
  if (!issue) return 'invalid request'
  if (issue.code === 'unrecognized_keys')
    return `unsupported parameter ${issue.keys.map((k) => `'${k}'`).join(', ')}`
  const at = issue.path.join('.')
  return at ? `${at}: ${issue.message}` : issue.message
}
