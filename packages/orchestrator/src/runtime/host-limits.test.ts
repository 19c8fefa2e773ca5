import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createLogger } from '@warren/shared'
import { afterEach, expect, it } from 'vitest'
import { ensureHostLimits, HOST_LIMITS } from './host-limits.js'

let root: string | undefined
afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true })
})

/** A stand-in /proc/sys holding every limit at `value` (or `values[sysctl]`). */
function fakeSysctls(value: number, values: Record<string, number> = {}): string {
  root = mkdtempSync(join(tmpdir(), 'warren-sysctl-'))
  for (const { sysctl } of HOST_LIMITS) {
    mkdirSync(join(root, dirname(sysctl)), { recursive: true })
    writeFileSync(join(root, sysctl), `${values[sysctl] ?? value}\n`)
  }
  return root
}

const read = (dir: string, sysctl: string) => Number(readFileSync(join(dir, sysctl), 'utf8'))

it('raises every limit below its minimum to that minimum', () => {
  const dir = fakeSysctls(128)
  ensureHostLimits(createLogger('test', 'error'), dir)
  for (const { sysctl, min } of HOST_LIMITS) expect(read(dir, sysctl)).toBe(min)
})

it('never lowers a limit set higher', () => {
  const high = { 'fs/inotify/max_user_instances': 65_536 }
  const dir = fakeSysctls(128, high)
  ensureHostLimits(createLogger('test', 'error'), dir)
  expect(read(dir, 'fs/inotify/max_user_instances')).toBe(65_536)
  expect(read(dir, 'fs/inotify/max_user_watches')).toBe(524_288)
})

it('goes on past a limit it cannot read', () => {
  const dir = fakeSysctls(1)
  rmSync(join(dir, 'kernel/keys/maxkeys'))
  ensureHostLimits(createLogger('test', 'error'), dir)
  expect(read(dir, 'fs/inotify/max_user_instances')).toBe(8192)
})
