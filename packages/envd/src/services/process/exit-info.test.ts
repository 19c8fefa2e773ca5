import { describe, expect, it } from 'vitest'
import { exitInfo } from './exit-info.js'

describe('exitInfo', () => {
  it.each([
    [0, null, { exitCode: 0, exited: true, status: 'exit status 0' }],
    [3, null, { exitCode: 3, exited: true, status: 'exit status 3', error: 'exit status 3' }],
    [
      null,
      'SIGKILL',
      { exitCode: -1, exited: false, status: 'signal: killed', error: 'signal: killed' },
    ],
    [
      null,
      15,
      { exitCode: -1, exited: false, status: 'signal: terminated', error: 'signal: terminated' },
    ],
    [0, 0, { exitCode: 0, exited: true, status: 'exit status 0' }],
    [
      null,
      'SIGWINCH',
      { exitCode: -1, exited: false, status: 'signal: SIGWINCH', error: 'signal: SIGWINCH' },
    ],
  ] as const)('code %s signal %s', (code, signal, expected) => {
    expect(exitInfo(code, signal)).toEqual(expected)
  })
})
