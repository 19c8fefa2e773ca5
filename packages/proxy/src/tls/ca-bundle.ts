import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Debian's bundle of the system's trusted roots (package ca-certificates). */
const SYSTEM_ROOTS = '/etc/ssl/certs/ca-certificates.crt'

/**
 * The system's roots plus the proxy CA, for programs that take one CA file
 * in place of the system's (SSL_CERT_FILE for Python and curl): pointing
 * them at the proxy CA alone would make them distrust every other site.
 * Rewritten at each start, so it follows updates of the system's roots.
 */
export function writeCaBundle(dir: string, caPem: string): { bundlePath: string } {
  const bundlePath = join(dir, 'proxy-ca-bundle.pem')
  const system = existsSync(SYSTEM_ROOTS) ? readFileSync(SYSTEM_ROOTS, 'utf8') : ''
  const tmp = `${bundlePath}.tmp-${process.pid}`
  writeFileSync(tmp, `${system.trimEnd()}\n${caPem}`, { mode: 0o600 })
  renameSync(tmp, bundlePath)
  return { bundlePath }
}
