import { execFileSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'

/** Installs missing Debian packages a benchmark needs (its baselines: nginx, wrk). */
export function ensurePackages(packages: string[]): void {
  const missing = packages.filter((p) => {
    try {
      return !execFileSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).includes(
        'install ok installed',
      )
    } catch {
      return true
    }
  })
  if (!missing.length) return
  process.stderr.write(`bench: installing ${missing.join(' ')}\n`)
  // Services of baseline packages must not start on their own.
  writeFileSync('/usr/sbin/policy-rc.d', '#!/bin/sh\nexit 101\n', { mode: 0o755 })
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore' })
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })
  } finally {
    rmSync('/usr/sbin/policy-rc.d', { force: true })
  }
}
