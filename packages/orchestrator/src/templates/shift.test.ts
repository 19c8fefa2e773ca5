import {
  chmodSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { shiftOwnership } from './shift.js'

describe('shiftOwnership (needs root)', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('shifts owners once per inode and keeps setuid bits', () => {
    const root = mkdtempSync(join(tmpdir(), 'shift-'))
    dirs.push(root)
    mkdirSync(join(root, 'bin'))
    writeFileSync(join(root, 'bin', 'sudo'), '')
    chmodSync(join(root, 'bin', 'sudo'), 0o4755)
    linkSync(join(root, 'bin', 'sudo'), join(root, 'bin', 'sudo-link'))
    symlinkSync('bin/sudo', join(root, 'link'))
    writeFileSync(join(root, 'user-file'), '')
    lchownSync(join(root, 'user-file'), 1000, 1000)

    shiftOwnership(root, 100000)

    const sudo = lstatSync(join(root, 'bin', 'sudo'))
    expect([sudo.uid, sudo.gid, sudo.mode & 0o7777]).toEqual([100000, 100000, 0o4755])
    expect(lstatSync(join(root, 'link')).uid).toBe(100000)
    expect(lstatSync(join(root, 'user-file')).uid).toBe(101000)
    expect(lstatSync(root).uid).toBe(100000)
  })
})
