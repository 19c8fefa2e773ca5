import { describe, expect, it } from 'vitest'
import { parseConfig } from './config.js'

describe('parseConfig', () => {
  it.each([
    [[], {}, { port: 49983, host: '0.0.0.0' }],
    [['--port', '1234'], {}, { port: 1234 }],
    [['--port=1234', '--host', '127.0.0.1'], {}, { port: 1234, host: '127.0.0.1' }],
    [[], { ENVD_PORT: '4000' }, { port: 4000 }],
    [['--port', '5'], { ENVD_PORT: '4000' }, { port: 5 }],
    [['--tunnel-ping-interval-ms', '50'], {}, { tunnelPingIntervalMs: 50 }],
  ] as const)('%j %j', (argv, env, expected) => {
    expect(parseConfig(argv, env)).toMatchObject(expected)
  })

  it.each([[['--port', 'x']], [['--port', '70000']], [['--nope', '1']], [['--port']]])(
    'rejects %j',
    (argv) => {
      expect(() => parseConfig(argv, {})).toThrow()
    },
  )
})
