import { describe, expect, it } from 'vitest'
import { permissionString } from './file-mode.js'

describe('permissionString', () => {
  it.each([
    [0o100644, '-rw-r--r--'],
    [0o040755, 'drwxr-xr-x'],
    [0o120777, 'Lrwxrwxrwx'],
    [0o041777, 'dtrwxrwxrwx'],
    [0o104755, 'urwxr-xr-x'],
    [0o020666, 'Dcrw-rw-rw-'],
    [0o010600, 'prw-------'],
    [0o140755, 'Srwxr-xr-x'],
    [0o102755, 'grwxr-xr-x'],
  ])('%o → %s', (mode, expected) => {
    expect(permissionString(mode)).toBe(expected)
  })
})
