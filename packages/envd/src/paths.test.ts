import { describe, expect, it } from 'vitest'
import { resolvePath } from './paths.js'

describe('resolvePath', () => {
  it.each([
    ['/etc/passwd', undefined, '/etc/passwd'],
    ['a.txt', undefined, '/home/user/a.txt'],
    ['', undefined, '/home/user'],
    ['~', undefined, '/home/user'],
    ['~/x/../y', undefined, '/home/user/y'],
    ['a.txt', '/work', '/work/a.txt'],
    ['', '/work', '/work'],
    ['/a/../../b', undefined, '/b'],
    ['~other', undefined, '/home/user/~other'],
  ])('%s (workdir %s) → %s', (path, workdir, expected) => {
    expect(resolvePath(path, '/home/user', workdir)).toBe(expected)
  })
})
