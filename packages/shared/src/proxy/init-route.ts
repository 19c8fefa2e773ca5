/**
 * Whether a request path reaches envd's orchestrator-only /init route,
 * however it is spelled (percent-encoding, doubled slashes, case, dot
 * segments). Both proxies check it before the sandbox is looked up, so the
 * answer reveals nothing about which sandboxes exist.
 */
export function isInitPath(url: string | undefined): boolean {
  let path = (url ?? '/').split('?')[0] ?? '/'
  try {
    path = decodeURIComponent(path)
  } catch {
    return true // undecodable: refuse rather than guess
  }
  const segments: string[] = []
  for (const seg of path.toLowerCase().split('/')) {
    if (seg === '' || seg === '.') continue
    if (seg === '..') segments.pop()
    else segments.push(seg)
  }
  return segments[0] === 'init'
}
