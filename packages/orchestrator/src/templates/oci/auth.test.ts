import { describe, expect, it } from 'vitest'
import { parseChallenges } from './auth.js'

describe('parseChallenges', () => {
  it.each([
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull"',
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.docker.io/token',
            service: 'registry.docker.io',
            scope: 'repository:library/python:pull',
          },
        },
      ],
    ],
    ['Basic realm="warren-test"', [{ scheme: 'basic', params: { realm: 'warren-test' } }]],
    [
      'Basic realm="a, b", Bearer realm="http://127.0.0.1:1/token",error="insufficient_scope"',
      [
        { scheme: 'basic', params: { realm: 'a, b' } },
        {
          scheme: 'bearer',
          params: { realm: 'http://127.0.0.1:1/token', error: 'insufficient_scope' },
        },
      ],
    ],
    [
      'Bearer realm=token, service = x',
      [{ scheme: 'bearer', params: { realm: 'token', service: 'x' } }],
    ],
    ['Bearer realm="quote\\"d"', [{ scheme: 'bearer', params: { realm: 'quote"d' } }]],
    ['', []],
  ])('%s', (header, want) => expect(parseChallenges(header)).toEqual(want))
})
