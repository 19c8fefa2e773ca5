import { describe, expect, it } from 'vitest'
import { isInitPath } from './init-route.js'

describe('isInitPath', () => {
  it.each([
    '/init',
    '/init/',
    '/init?x=1',
    '//init',
    '/INIT',
    '/%69nit',
    '/a/../init',
    '/./init',
    '/init/x',
    '%2Finit',
    '/%E0%A4%A',
  ])('refuses %s', (p) => expect(isInitPath(p)).toBe(true))
  it.each([
    '/',
    '/health',
    '/files?path=/init',
    '/process.Process/Start',
    '/initial',
    '/x/init',
    undefined,
  ])('allows %s', (p) => expect(isInitPath(p)).toBe(false))
})
