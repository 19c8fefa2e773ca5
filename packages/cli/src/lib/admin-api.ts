import { type ConnectionFlags, resolveConnection } from './connection.js'

/**
 * Calls Warren's admin API (/admin/*) with an admin key: the local `warren
 * up`'s first key by default, or --api-key / E2B_API_KEY. The server decides:
 * a key that is not an admin key gets 403, printed as the API said it.
 */
export async function adminCall<T>(
  flags: ConnectionFlags,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const conn = resolveConnection(flags)
  const res = await fetch(`${conn.apiUrl}${path}`, {
    method,
    headers: {
      'x-api-key': conn.apiKey,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  if (!res.ok) {
    let message = text
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? text
    } catch {}
    throw new Error(`${method} ${path}: ${res.status} ${message}`)
  }
  return (text ? JSON.parse(text) : undefined) as T
}
