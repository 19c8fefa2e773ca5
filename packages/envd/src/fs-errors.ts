import { Code, ConnectError } from '@connectrpc/connect'
import { NotADirectoryError } from './owned-dirs.js'

/** The errno codes envd translates; everything else is an internal error. */
const BY_ERRNO: Record<string, { connect: Code; http: number }> = {
  ENOENT: { connect: Code.NotFound, http: 404 },
  ENOTDIR: { connect: Code.NotFound, http: 404 },
  EACCES: { connect: Code.PermissionDenied, http: 403 },
  EPERM: { connect: Code.PermissionDenied, http: 403 },
  EROFS: { connect: Code.PermissionDenied, http: 403 },
  EEXIST: { connect: Code.AlreadyExists, http: 409 },
  ENOTEMPTY: { connect: Code.FailedPrecondition, http: 409 },
  EISDIR: { connect: Code.InvalidArgument, http: 400 },
  EINVAL: { connect: Code.InvalidArgument, http: 400 },
  ENAMETOOLONG: { connect: Code.InvalidArgument, http: 400 },
  ELOOP: { connect: Code.FailedPrecondition, http: 400 },
  EXDEV: { connect: Code.FailedPrecondition, http: 400 },
  ENOSPC: { connect: Code.ResourceExhausted, http: 507 },
  EDQUOT: { connect: Code.ResourceExhausted, http: 507 },
}

export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

function describe(err: unknown, what: string): string {
  const errno = errnoOf(err)
  switch (errno) {
    case 'ENOENT':
    case 'ENOTDIR':
      return `${what}: no such file or directory`
    case 'EACCES':
    case 'EPERM':
      return `${what}: permission denied`
    case 'EROFS':
      return `${what}: read-only file system`
    case 'EEXIST':
      return `${what}: already exists`
    case 'ENOSPC':
    case 'EDQUOT':
      return `${what}: not enough disk space available`
    default:
      return `${what}: ${errno ?? 'error'}`
  }
}

/** Translates a filesystem error where it enters a Connect handler. */
export function fsConnectError(err: unknown, what: string): ConnectError {
  if (err instanceof ConnectError) return err
  if (err instanceof NotADirectoryError) return new ConnectError(err.message, Code.InvalidArgument)
  const mapped = BY_ERRNO[errnoOf(err) ?? '']
  if (!mapped)
    return new ConnectError(describe(err, what), Code.Internal, undefined, undefined, err)
  return new ConnectError(describe(err, what), mapped.connect)
}

/** The HTTP status and message for a filesystem error on a REST route. */
export function fsHttpError(err: unknown, what: string): { status: number; message: string } {
  if (err instanceof NotADirectoryError) return { status: 400, message: err.message }
  const mapped = BY_ERRNO[errnoOf(err) ?? '']
  return { status: mapped?.http ?? 500, message: describe(err, what) }
}
