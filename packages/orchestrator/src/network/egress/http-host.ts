/**
 * The Host of a plain HTTP request, from the first bytes of a connection.
 * 'incomplete' asks for more bytes; null means no Host header (or not HTTP).
 * The port is dropped: the proxy dials the port the sandbox asked for.
 */
export function readHttpHost(buf: Buffer): string | null | 'incomplete' {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return buf.length > 16_384 ? null : 'incomplete'
  const head = buf.subarray(0, end).toString('latin1')
  if (!/^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/.test(head)) return null
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':')
    if (i > 0 && line.slice(0, i).trim().toLowerCase() === 'host') {
      const host = line.slice(i + 1).trim()
      if (host.startsWith('[')) return null // IPv6 literal: no IPv6 egress
      return host.replace(/:\d+$/, '') || null
    }
  }
  return null
}
