import { describe, expect, it } from 'vitest'
import { schemeAllowed } from './http.js'

describe('schemeAllowed', () => {
  it.each([
    ['https://registry-1.docker.io/v2/', [], true],
    ['http://registry-1.docker.io/v2/', [], false],
    ['http://127.0.0.1:5000/v2/', [], true],
    ['http://localhost:5000/v2/', [], true],
    ['http://[::1]:5000/v2/', [], true],
    ['http://10.0.0.5:5000/v2/', [], false],
    ['http://10.0.0.5:5000/v2/', ['10.0.0.5:5000'], true],
    ['http://10.0.0.5:5001/v2/', ['10.0.0.5:5000'], false],
    ['ftp://127.0.0.1/x', [], false],
    ['file:///etc/passwd', [], false],
  ])('%s %j → %s', (url, insecure, want) => {
    expect(schemeAllowed(new URL(url), insecure)).toBe(want)
  })
})
