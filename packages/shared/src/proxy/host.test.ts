import { describe, expect, it } from 'vitest'
import { sandboxAddressOf } from './host.js'

const id = 'abcdefghij0123456789'

describe('sandboxAddressOf', () => {
  it.each([
    {
      name: 'host label',
      h: { host: `8080-${id}.localhost:3002` },
      want: { sandboxId: id, port: 8080 },
    },
    {
      name: 'host label, upper case',
      h: { host: `8080-${id.toUpperCase()}.E2B.DEV` },
      want: { sandboxId: id, port: 8080 },
    },
    {
      name: 'headers win over host',
      h: { host: `1-${id}.x`, sandboxId: id, sandboxPort: '49983' },
      want: { sandboxId: id, port: 49983 },
    },
    {
      name: 'header id without port means envd',
      h: { sandboxId: id },
      want: { sandboxId: id, port: 49983 },
    },
    { name: 'no sandbox in host', h: { host: 'localhost:3002' }, want: undefined },
    { name: 'port out of range', h: { host: `70000-${id}.x` }, want: undefined },
    { name: 'port zero', h: { host: `0-${id}.x` }, want: undefined },
    { name: 'short id', h: { host: '8080-abc.x' }, want: undefined },
    { name: 'bad header port', h: { sandboxId: id, sandboxPort: '80a' }, want: undefined },
    { name: 'bad header id', h: { sandboxId: '../etc', sandboxPort: '80' }, want: undefined },
    { name: 'huge header id', h: { sandboxId: 'a'.repeat(65) }, want: undefined },
    {
      name: 'header id of another shape is looked up (an unknown sandbox, not a bad request)',
      h: { sandboxId: 'some-id' },
      want: { sandboxId: 'some-id', port: 49983 },
    },
    { name: 'no headers', h: {}, want: undefined },
  ])('$name', ({ h, want }) => {
    expect(sandboxAddressOf(h)).toEqual(want)
  })
})
