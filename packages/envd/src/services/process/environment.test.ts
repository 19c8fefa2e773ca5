import { describe, expect, it } from 'vitest'
import { processEnv } from './environment.js'

describe('processEnv', () => {
  const user = {
    name: 'user',
    uid: 1000,
    gid: 1000,
    home: '/home/user',
    shell: '/bin/bash',
    groups: [1000],
  }
  it('layers identity, sandbox and request variables', () => {
    const env = processEnv({
      user,
      cwd: '/tmp',
      path: undefined,
      sandboxVars: new Map([
        ['A', 'sandbox'],
        ['B', 'sandbox'],
      ]),
      requestVars: { B: 'request', HOME: '/elsewhere' },
    })
    expect(env).toEqual({
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: '/elsewhere',
      USER: 'user',
      LOGNAME: 'user',
      SHELL: '/bin/bash',
      PWD: '/tmp',
      A: 'sandbox',
      B: 'request',
    })
  })
})
