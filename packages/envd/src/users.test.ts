import { describe, expect, it } from 'vitest'
import { parseGroup, parsePasswd } from './users.js'

describe('parsePasswd', () => {
  it('parses entries and skips junk', () => {
    const text = [
      'root:x:0:0:root:/root:/bin/bash',
      '# comment',
      '',
      'user:x:1000:1000::/home/user:/bin/bash',
      'broken:x:zz:1::/:',
      'short:x:1',
    ].join('\n')
    expect(parsePasswd(text)).toEqual([
      { name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/bash' },
      { name: 'user', uid: 1000, gid: 1000, home: '/home/user', shell: '/bin/bash' },
    ])
  })

  it('defaults an empty home and shell', () => {
    expect(parsePasswd('nobody:x:65534:65534:::')).toEqual([
      { name: 'nobody', uid: 65534, gid: 65534, home: '/', shell: '/bin/sh' },
    ])
  })
})

describe('parseGroup', () => {
  it('parses members', () => {
    expect(parseGroup('sudo:x:27:user,other\nuser:x:1000:\n')).toEqual([
      { name: 'sudo', gid: 27, members: ['user', 'other'] },
      { name: 'user', gid: 1000, members: [] },
    ])
  })
})
