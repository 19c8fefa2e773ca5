import { describe, expect, it } from 'vitest'
import { volumeContentOp, volumeContentQueries, volumePathSegments } from './volume-content.js'
import { checkVolumeMounts, parseMountPath, VOLUME_NAME } from './volumes.js'

describe('parseMountPath', () => {
  it.each([
    '/data',
    '/mnt/shared',
    '/home/user/data',
    '/procfs',
    '/devices',
    '/opt/warrens',
    '/a b',
  ])('accepts %s', (p) => expect(parseMountPath(p)).toBe(p))

  it.each<[string, RegExp]>([
    ['data', /absolute/],
    ['', /absolute/],
    ['/', /root/],
    ['/data/', /canonical/],
    ['//data', /canonical/],
    ['/a/./b', /canonical/],
    ['/a/../etc', /canonical/],
    ['/proc', /reserves/],
    ['/proc/self', /reserves/],
    ['/sys/fs/cgroup', /reserves/],
    ['/dev', /reserves/],
    ['/dev/shm', /reserves/],
    ['/opt/warren', /reserves/],
    ['/opt/warren/envd', /reserves/],
    ['/a\0b', /NUL/],
    [`/${'x'.repeat(256)}`, /255 bytes/],
  ])('refuses %j', (p, why) => expect(() => parseMountPath(p)).toThrow(why))
})

describe('checkVolumeMounts', () => {
  it('accepts distinct volumes at distinct, separate paths', () => {
    const m = [
      { name: 'a', path: '/a' },
      { name: 'b', path: '/ab' },
      { name: 'c', path: '/b/c' },
    ]
    expect(checkVolumeMounts(m)).toBe(m)
  })

  it.each([
    [
      'a volume twice',
      [
        { name: 'a', path: '/a' },
        { name: 'a', path: '/b' },
      ],
      /named twice/,
    ],
    [
      'a path twice',
      [
        { name: 'a', path: '/a' },
        { name: 'b', path: '/a' },
      ],
      /used twice/,
    ],
    [
      'a path inside another',
      [
        { name: 'a', path: '/a/b' },
        { name: 'b', path: '/a' },
      ],
      /inside/,
    ],
    ['a bad path', [{ name: 'a', path: 'rel' }], /absolute/],
  ])('refuses %s', (_, mounts, why) => expect(() => checkVolumeMounts(mounts)).toThrow(why))

  it('refuses more than 16', () => {
    const many = Array.from({ length: 17 }, (_, i) => ({ name: `v${i}`, path: `/v${i}` }))
    expect(() => checkVolumeMounts(many)).toThrow(/at most 16/)
  })
})

describe('volume names', () => {
  it.each(['a', 'my-volume', 'V0-1', 'x'.repeat(63)])('accepts %s', (n) =>
    expect(VOLUME_NAME.test(n)).toBe(true),
  )
  it.each(['', 'a b', 'a_b', 'a.b', 'a/b', 'x'.repeat(64)])('refuses %j', (n) =>
    expect(VOLUME_NAME.test(n)).toBe(false),
  )
})

describe('volume content requests', () => {
  it.each<[string, string[]]>([
    ['/', []],
    ['', []],
    ['/a/b', ['a', 'b']],
    ['a/b/', ['a', 'b']],
    ['/a/./b//c', ['a', 'b', 'c']],
    ['/..a/b..', ['..a', 'b..']],
  ])('path %j is %j', (p, names) => expect(volumePathSegments(p)).toEqual(names))

  it.each(['/..', '/a/../b', '..', '/a\0'])('refuses path %j', (p) =>
    expect(() => volumePathSegments(p)).toThrow(),
  )

  it('maps methods and segments to operations', () => {
    expect(volumeContentOp('GET', 'dir')).toBe('listDir')
    expect(volumeContentOp('POST', 'dir')).toBe('makeDir')
    expect(volumeContentOp('PATCH', 'path')).toBe('updateMetadata')
    expect(volumeContentOp('PUT', 'file')).toBe('writeFile')
    expect(volumeContentOp('POST', 'file')).toBeUndefined()
    expect(volumeContentOp('GET', 'other')).toBeUndefined()
  })

  it('parses the query as the SDK sends it, and refuses what it does not know', () => {
    const q = volumeContentQueries.makeDir.parse({
      path: '/a',
      uid: '0',
      mode: '493',
      force: 'true',
    })
    expect(q).toEqual({ path: '/a', uid: 0, mode: 0o755, force: true })
    expect(volumeContentQueries.makeDir.safeParse({ path: '/a', owner: 'x' }).success).toBe(false)
    expect(volumeContentQueries.makeDir.safeParse({ path: '/a', uid: '70000' }).success).toBe(false)
    expect(volumeContentQueries.makeDir.safeParse({ path: '/a', mode: '8192' }).success).toBe(false)
    expect(volumeContentQueries.makeDir.safeParse({ path: '/a', force: 'yes' }).success).toBe(false)
    expect(volumeContentQueries.listDir.safeParse({ path: '/', depth: '0' }).success).toBe(false)
  })
})
