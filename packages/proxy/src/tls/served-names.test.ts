import { describe, expect, it } from 'vitest'
import { domainHost, isServedName } from './served-names.js'

const ID = 'abcdefghij0123456789'

describe('served TLS names', () => {
  it('takes the host part of the domain', () => {
    expect(domainHost('localhost:3002')).toBe('localhost')
    expect(domainHost('Sbx.Example.test')).toBe('sbx.example.test')
  })

  it.each([
    [`8000-${ID}.localhost`, 'localhost', true],
    [`49983-${ID}.LOCALHOST`, 'localhost', true],
    ['localhost', 'localhost', true],
    [`8000-${ID}.sbx.example.test`, 'sbx.example.test', true],
    ['example.com', 'localhost', false],
    [`8000-${ID}.example.com`, 'localhost', false],
    [`a.8000-${ID}.localhost`, 'localhost', false],
    [`x.localhost`, 'localhost', false],
    [`99999-${ID}.localhost`, 'localhost', false],
    [`8000-${ID}.notlocalhost`, 'localhost', false],
    [`8000-${ID}.sbx.example.test`, 'example.test', false],
  ])('%s under %s: %s', (name, domain, served) => {
    expect(isServedName(name, domain)).toBe(served)
  })
})
