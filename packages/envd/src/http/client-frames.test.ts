import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { type ClientFrameSink, ClientFrames } from './client-frames.js'

/** A client's frame (RFC 6455 §5.2), masked with a random key unless told otherwise. */
function frame(
  opcode: number,
  payload: Buffer,
  opts: { fin?: boolean; masked?: boolean; rsv?: number } = {},
): Buffer {
  const { fin = true, masked = true, rsv = 0 } = opts
  const len = payload.length
  const ext = len < 126 ? 0 : len < 65_536 ? 2 : 8
  const head = Buffer.alloc(2 + ext + (masked ? 4 : 0))
  head[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode
  head[1] = (masked ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127)
  if (ext === 2) head.writeUInt16BE(len, 2)
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2)
  if (!masked) return Buffer.concat([head, payload])
  const key = randomBytes(4)
  key.copy(head, 2 + ext)
  return Buffer.concat([head, Buffer.from(payload.map((b, i) => b ^ key[i & 3]!))])
}

const closeFrame = (code?: number) => {
  const p = Buffer.alloc(code === undefined ? 0 : 2)
  if (code !== undefined) p.writeUInt16BE(code)
  return frame(0x8, p)
}

/** What the reader reported, in order. */
function recorder() {
  const events: string[] = []
  const data: Buffer[] = []
  const sink: ClientFrameSink = {
    data: (b) => {
      data.push(Buffer.from(b))
      events.push('data')
    },
    ping: (p) => events.push(`ping:${p.toString()}`),
    pong: (p) => events.push(`pong:${p.toString()}`),
    close: (code) => events.push(`close:${code}`),
    violation: (m) => events.push(`violation:${m}`),
  }
  return { sink, events, data: () => Buffer.concat(data) }
}

describe('ClientFrames', () => {
  it('passes every payload byte on, unmasked, however the stream is cut', () => {
    const a = randomBytes(100)
    const b = randomBytes(70_000) // a 16-bit length
    const c = randomBytes(3)
    const stream = Buffer.concat([
      frame(0x2, a),
      frame(0x9, Buffer.from('p1')),
      frame(0x2, b),
      frame(0x1, c),
      frame(0xa, Buffer.from('p2')),
    ])
    for (const cut of [1, 2, 3, 7, 13, 126, 4096, 65_536, stream.length]) {
      const r = recorder()
      const frames = new ClientFrames(r.sink)
      for (let i = 0; i < stream.length; i += cut)
        frames.push(Buffer.from(stream.subarray(i, i + cut)))
      expect(r.data().equals(Buffer.concat([a, b, c]))).toBe(true)
      expect(r.events.filter((e) => e !== 'data')).toEqual(['ping:p1', 'pong:p2'])
    }
  })

  it('reads a 64-bit length and a fragmented message with a ping between its frames', () => {
    const big = randomBytes(70_000)
    const stream = Buffer.concat([
      frame(0x2, Buffer.from('one'), { fin: false }),
      frame(0x9, Buffer.from('mid')),
      frame(0x0, Buffer.from('two'), { fin: false }),
      frame(0x0, Buffer.from('three')),
    ])
    // A 64-bit length for a payload that would fit 16 bits is still a valid frame.
    const head = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 1, 0x11, 0x70, 0, 0, 0, 0])
    const r = recorder()
    const frames = new ClientFrames(r.sink)
    frames.push(stream)
    frames.push(Buffer.concat([head, big]))
    expect(r.data().equals(Buffer.concat([Buffer.from('onetwothree'), big]))).toBe(true)
    expect(r.events).toContain('ping:mid')
  })

  it('unmasks in place: the data it passes on are views of the chunk read', () => {
    const chunk = frame(0x2, Buffer.from('in place'))
    const seen: Buffer[] = []
    new ClientFrames({ ...recorder().sink, data: (b) => seen.push(b) }).push(chunk)
    expect(seen[0]!.buffer).toBe(chunk.buffer)
    expect(seen[0]!.toString()).toBe('in place')
  })

  it('reports a close with its code (or none) and reads nothing after it', () => {
    const r = recorder()
    new ClientFrames(r.sink).push(
      Buffer.concat([frame(0x2, Buffer.from('x')), closeFrame(1000), frame(0x2, Buffer.from('y'))]),
    )
    expect(r.events).toEqual(['data', 'close:1000'])
    expect(r.data().toString()).toBe('x')
    const bare = recorder()
    new ClientFrames(bare.sink).push(closeFrame())
    expect(bare.events).toEqual(['close:undefined'])
  })

  it.each([
    ['an unmasked frame', frame(0x2, Buffer.from('x'), { masked: false })],
    ['reserved bits', frame(0x2, Buffer.from('x'), { rsv: 4 })],
    ['an unknown opcode', frame(0x3, Buffer.from('x'))],
    ['a long control frame', frame(0x9, Buffer.alloc(126))],
    ['a fragmented control frame', frame(0x9, Buffer.from('x'), { fin: false })],
    ['a continuation with no message', frame(0x0, Buffer.from('x'))],
    [
      'a new message inside a fragmented one',
      Buffer.concat([frame(0x2, Buffer.from('a'), { fin: false }), frame(0x2, Buffer.from('b'))]),
    ],
    ['an invalid close code', closeFrame(1005)],
    ['half a close code', frame(0x8, Buffer.from([3]))],
  ])('stops at %s', (_what, bytes) => {
    const r = recorder()
    const frames = new ClientFrames(r.sink)
    frames.push(bytes)
    frames.push(frame(0x2, Buffer.from('after')))
    expect(r.events.filter((e) => e.startsWith('violation'))).toHaveLength(1)
    expect(r.events.at(-1)).toMatch(/^violation:/)
  })
})
