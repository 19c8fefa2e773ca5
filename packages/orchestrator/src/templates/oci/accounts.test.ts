import { describe, expect, it } from 'vitest'
import { addAccount } from './accounts.js'

const REQ = {
  name: 'user',
  uid: 1000,
  home: '/home/user',
  shell: '/bin/bash',
  groups: ['sudo', 'wheel'],
  today: 20000,
}

const DEBIAN = {
  passwd:
    'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  group: 'root:x:0:\nsudo:x:27:\nusers:x:100:\nnogroup:x:65534:\n',
  shadow: 'root:*:19000:0:99999:7:::\n',
  gshadow: 'root:*::\nsudo:*::\n',
}

describe('addAccount', () => {
  it('adds user 1000 with its group, sudo membership, shadow and gshadow entries', () => {
    const { account, files } = addAccount(DEBIAN, REQ)
    expect(account).toEqual({
      name: 'user',
      uid: 1000,
      gid: 1000,
      home: '/home/user',
      shell: '/bin/bash',
      created: true,
    })
    expect(files.passwd.split('\n').at(-2)).toBe('user:x:1000:1000::/home/user:/bin/bash')
    expect(files.group).toBe(
      'root:x:0:\nsudo:x:27:user\nusers:x:100:\nnogroup:x:65534:\nuser:x:1000:\n',
    )
    expect(files.shadow).toBe('root:*:19000:0:99999:7:::\nuser:!:20000:0:99999:7:::\n')
    expect(files.gshadow).toBe('root:*::\nsudo:*::user\nuser:!::\n')
  })

  it('takes the next free uid and gid when 1000 is taken (node images have `node` there)', () => {
    const { account } = addAccount(
      {
        passwd: `${DEBIAN.passwd}node:x:1000:1000::/home/node:/bin/bash\n`,
        group: `${DEBIAN.group}node:x:1000:\n`,
      },
      REQ,
    )
    expect([account.uid, account.gid]).toEqual([1001, 1001])
  })

  it('joins an existing group of its name, and tolerates files without a final newline', () => {
    const { account, files } = addAccount(
      { passwd: 'root:x:0:0::/root:/bin/sh', group: 'root:x:0:\nuser:x:1500:\nwheel:x:10:root' },
      REQ,
    )
    expect([account.uid, account.gid]).toEqual([1000, 1500])
    expect(files.passwd).toBe('root:x:0:0::/root:/bin/sh\nuser:x:1000:1500::/home/user:/bin/bash\n')
    expect(files.group).toBe('root:x:0:\nuser:x:1500:\nwheel:x:10:root,user')
    expect(files.shadow).toBeUndefined()
  })

  it('keeps an account that exists', () => {
    const passwd = `${DEBIAN.passwd}user:x:1234:1234::/srv/user:/bin/zsh\n`
    const { account, files } = addAccount({ ...DEBIAN, passwd }, REQ)
    expect(account).toMatchObject({ uid: 1234, gid: 1234, home: '/srv/user', created: false })
    expect(files.passwd).toBe(passwd)
  })
})
