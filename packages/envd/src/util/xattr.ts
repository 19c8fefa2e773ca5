import { createRequire } from 'node:module'

interface XattrBinding {
  listAttributesSync(path: string): string[]
  getAttributeSync(path: string, name: string): Buffer | null
  setAttributeSync(path: string, name: string, value: Uint8Array | string): void
  removeAttributeSync(path: string, name: string): void
}

/** User metadata lives in `user.e2b.*` xattrs, as in E2B envd 0.6.2. */
export const METADATA_PREFIX = 'user.e2b.'
const MAX_KEY = 255 - METADATA_PREFIX.length
const MAX_TOTAL = 4096

let binding: XattrBinding | undefined

/**
 * Loads @napi-rs/xattr's platform binding directly: its index.js probes for
 * musl (possibly by running `ldd`), which costs time on a path that only
 * needs the glibc build envd runs with; musl is the fallback.
 */
function xattr(): XattrBinding {
  if (binding) return binding
  const require = createRequire(import.meta.url)
  const base = `@napi-rs/xattr-${process.platform}-${process.arch}`
  try {
    binding = require(`${base}-gnu`) as XattrBinding
  } catch {
    binding = require(`${base}-musl`) as XattrBinding
  }
  return binding
}

const ERRNO: Record<string, string> = {
  '1': 'EPERM',
  '2': 'ENOENT',
  '7': 'E2BIG',
  '13': 'EACCES',
  '20': 'ENOTDIR',
  '28': 'ENOSPC',
  '30': 'EROFS',
  '61': 'ENODATA',
  '95': 'ENOTSUP',
}

/** napi-rs reports "… (os error N)"; give the error a Node-style errno code. */
function withErrno(err: unknown): unknown {
  const m = /\(os error (\d+)\)/.exec(err instanceof Error ? err.message : '')
  const code = m && ERRNO[m[1]!]
  return code ? Object.assign(new Error((err as Error).message), { code }) : err
}

function unsupported(err: unknown): boolean {
  const code = (err as { code?: string }).code
  return code === 'ENOTSUP' || code === 'ENODATA'
}

/** Key/value rules of the `X-Metadata-*` contract; returns the problem, if any. */
export function validateMetadata(metadata: Record<string, string>): string | undefined {
  let total = 0
  for (const [k, v] of Object.entries(metadata)) {
    if (k === '') return 'metadata key must not be empty'
    if (k.length > MAX_KEY) return `metadata key '${k}' exceeds ${MAX_KEY} bytes`
    if (!/^[\x20-\x7e]+$/.test(k)) return `metadata key '${k}' must be printable US-ASCII`
    if (!/^[\x20-\x7e]*$/.test(v)) return `metadata value for key '${k}' must be printable US-ASCII`
    total += METADATA_PREFIX.length + k.length + v.length
  }
  if (total > MAX_TOTAL) return `total metadata size ${total} exceeds ${MAX_TOTAL} bytes`
  return undefined
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/** The file's metadata; empty when none is set or xattrs are unsupported. */
export function readMetadata(path: string): Record<string, string> {
  const out: Record<string, string> = {}
  let names: string[]
  try {
    names = xattr().listAttributesSync(path)
  } catch {
    return out
  }
  for (const name of names) {
    if (!name.startsWith(METADATA_PREFIX)) continue
    try {
      const value = xattr().getAttributeSync(path, name)
      if (value) out[name.slice(METADATA_PREFIX.length)] = decoder.decode(value)
    } catch {
      // unreadable or not UTF-8: skip rather than fail the whole lookup
    }
  }
  return out
}

/**
 * Replaces the file's metadata with `metadata` (stale keys are removed: an
 * overwrite keeps xattrs, so an upload without metadata must clear them).
 * Filesystems without user xattrs are tolerated when there is nothing to set.
 */
export function writeMetadata(path: string, metadata: Record<string, string>): void {
  try {
    const existing = xattr().listAttributesSync(path)
    for (const name of existing) {
      if (!name.startsWith(METADATA_PREFIX)) continue
      if (Object.hasOwn(metadata, name.slice(METADATA_PREFIX.length))) continue
      xattr().removeAttributeSync(path, name)
    }
    for (const [k, v] of Object.entries(metadata)) {
      xattr().setAttributeSync(path, METADATA_PREFIX + k, v)
    }
  } catch (err) {
    const e = withErrno(err)
    if (unsupported(e) && Object.keys(metadata).length === 0) return
    throw e
  }
}
