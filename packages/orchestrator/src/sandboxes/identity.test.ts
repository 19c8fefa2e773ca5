import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { NetworkSlot } from '../network/slots.js'
import { writeIdentity } from './boot.js'

// The identity files are written into a writable layer that a resumed
// sandbox's root wrote: links planted there must not make the host write or
// chown what they point to. Needs root (chown to the sandbox's uid).

const UID = 100000
const slot = { sandboxIp: '10.1.0.2', hostIp: '10.1.0.1' } as NetworkSlot
let dir: string

afterEach(() => rmSync(dir, { recursive: true, force: true }))

function layout() {
  dir = mkdtempSync(join(tmpdir(), 'warren-identity-'))
  const upper = join(dir, 'upper')
  const outside = join(dir, 'outside')
  mkdirSync(upper)
  mkdirSync(outside)
  const victim = join(outside, 'victim')
  writeFileSync(victim, 'host file\n')
  return { upper, outside, victim }
}

function expectIdentity(upper: string) {
  for (const name of ['hostname', 'hosts', 'resolv.conf']) {
    const st = lstatSync(join(upper, 'etc', name))
    expect(st.isFile(), name).toBe(true)
    expect(st.uid).toBe(UID)
  }
  expect(readFileSync(join(upper, 'etc', 'hostname'), 'utf8')).toBe('abc\n')
}

describe('writeIdentity', () => {
  it('replaces links at /etc/hosts and /etc/hostname instead of writing through them', () => {
    const { upper, victim } = layout()
    mkdirSync(join(upper, 'etc'))
    symlinkSync(victim, join(upper, 'etc', 'hosts'))
    symlinkSync(victim, join(upper, 'etc', 'hostname'))
    writeIdentity(upper, undefined, UID, 'abc', slot)
    expect(readFileSync(victim, 'utf8')).toBe('host file\n')
    expect(statSync(victim).uid).toBe(0)
    expectIdentity(upper)
  })

  it('replaces an etc that is a link to a directory elsewhere', () => {
    const { upper, outside } = layout()
    symlinkSync(outside, join(upper, 'etc'))
    writeIdentity(upper, undefined, UID, 'abc', slot)
    expect(lstatSync(join(upper, 'etc')).isDirectory()).toBe(true)
    expect(() => statSync(join(outside, 'hosts'))).toThrow()
    expect(statSync(outside).uid).toBe(0)
    expectIdentity(upper)
  })

  it('writes fresh files into a fresh layer, and over its own earlier ones', () => {
    const { upper } = layout()
    writeIdentity(upper, { mode: 0o755, uid: UID, gid: UID }, UID, 'old', slot)
    writeIdentity(upper, { mode: 0o755, uid: UID, gid: UID }, UID, 'abc', slot)
    expectIdentity(upper)
    expect(readFileSync(join(upper, 'etc', 'hosts'), 'utf8')).toContain('10.1.0.2\tabc')
  })
})
