import type { IncomingHttpHeaders } from 'node:http'
import { validateMetadata } from '../util/xattr.js'

/**
 * `X-Metadata-<key>: <value>` request headers → metadata, keys lowercased
 * (Node already lowercases header names; a repeated header keeps its first
 * value). Returns the problem for invalid keys or values.
 */
export function uploadMetadata(
  headers: IncomingHttpHeaders,
): { ok: true; metadata: Record<string, string> } | { ok: false; message: string } {
  const metadata: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-metadata-')) continue
    const key = name.slice('x-metadata-'.length)
    if (key === '') continue
    const v = Array.isArray(value) ? value[0] : value
    if (v !== undefined) metadata[key] = v
  }
  const problem = validateMetadata(metadata)
  return problem ? { ok: false, message: problem } : { ok: true, metadata }
}
