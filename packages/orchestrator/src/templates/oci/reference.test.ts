import { describe, expect, it } from 'vitest'
import { formatReference, isLoopbackHost, parseReference, registryEndpoint } from './reference.js'

const D = `sha256:${'a'.repeat(64)}`

describe('parseReference', () => {
  it.each([
    ['python:3.12', 'docker.io', 'library/python', '3.12', undefined],
    ['python', 'docker.io', 'library/python', 'latest', undefined],
    ['user/repo:tag', 'docker.io', 'user/repo', 'tag', undefined],
    ['docker.io/python', 'docker.io', 'library/python', 'latest', undefined],
    ['index.docker.io/user/repo', 'docker.io', 'user/repo', 'latest', undefined],
    ['ghcr.io/org/team/app:v1.2', 'ghcr.io', 'org/team/app', 'v1.2', undefined],
    ['localhost:5000/x', 'localhost:5000', 'x', 'latest', undefined],
    ['localhost/x:1', 'localhost', 'x', '1', undefined],
    ['127.0.0.1:41000/test/a:v1', '127.0.0.1:41000', 'test/a', 'v1', undefined],
    ['[::1]:5000/x', '[::1]:5000', 'x', 'latest', undefined],
    [`python@${D}`, 'docker.io', 'library/python', undefined, D],
    [`python:3.12@${D}`, 'docker.io', 'library/python', undefined, D],
    ['my.registry/a__b/c-d.e:x_Y-1', 'my.registry', 'a__b/c-d.e', 'x_Y-1', undefined],
  ])('%s', (ref, registry, repository, tag, digest) => {
    expect(parseReference(ref)).toEqual({
      registry,
      repository,
      ...(tag ? { tag } : {}),
      ...(digest ? { digest } : {}),
    })
  })

  it.each([
    '',
    'Python',
    'python:',
    'a b',
    'python@sha256:abc',
    'python@md5:aaaa',
    'host:5000/UPPER',
    'repo/-bad',
    `x:${'t'.repeat(129)}`,
  ])('refuses %j', (ref) => {
    expect(() => parseReference(ref)).toThrow(/invalid image reference/)
  })

  it('formats canonically', () => {
    expect(formatReference(parseReference('python:3.12'))).toBe('docker.io/library/python:3.12')
    expect(formatReference(parseReference(`x@${D}`))).toBe(`docker.io/library/x@${D}`)
  })
})

describe('registryEndpoint', () => {
  it.each([
    ['docker.io', [], 'https://registry-1.docker.io'],
    ['ghcr.io', [], 'https://ghcr.io'],
    ['localhost:5000', [], 'http://localhost:5000'],
    ['127.0.0.1:41000', [], 'http://127.0.0.1:41000'],
    ['[::1]:5000', [], 'http://[::1]:5000'],
    ['10.0.0.5:5000', [], 'https://10.0.0.5:5000'],
    ['10.0.0.5:5000', ['10.0.0.5:5000'], 'http://10.0.0.5:5000'],
    ['localhost.example.com', [], 'https://localhost.example.com'],
  ])('%s %j → %s', (registry, insecure, url) => {
    expect(registryEndpoint(registry, insecure).baseUrl).toBe(url)
  })

  it.each([
    ['127.8.9.10:1', true],
    ['128.0.0.1', false],
    ['::1', false],
    ['[::1]', true],
    ['LOCALHOST:80', true],
  ])('isLoopbackHost(%s) = %s', (host, want) => expect(isLoopbackHost(host)).toBe(want))
})
