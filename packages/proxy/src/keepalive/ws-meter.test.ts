import { describe, expect, it } from 'vitest'
import { WebSocketMeter } from './ws-meter.js'

/** One frame as RFC 6455 lays it out (masked like a client's when `mask`). */
function frame(opcode: number, payload: Buffer, mask = false): Buffer {
  const len = payload.length
  const head =
    len < 126
      ? Buffer.from([0x80 | opcode, len])
      : len < 65_536
        ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff])
        : Buffer.concat([Buffer.from([0x80 | opcode, 127]), u64(len)])
  if (!mask) return Buffer.concat([head, payload])
  head[1]! |= 0x80
  const key = Buffer.from([1, 2, 3, 4])
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!))
  return Buffer.concat([head, key, body])
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(n))
  return b
}

const PING = 0x9
const PONG = 0xa
const CLOSE = 0x8
const TEXT = 0x1
const BINARY = 0x2
const RESPONSE = Buffer.from(
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
)

/** Feeds `bytes` in chunks of `size` and sums what the meter counted. */
function measure(meter: WebSocketMeter, bytes: Buffer, size: number): number {
  let total = 0
  for (let i = 0; i < bytes.length; i += size) total += meter.push(bytes.subarray(i, i + size))
  return total
}

describe('WebSocketMeter', () => {
  const big = Buffer.alloc(70_000, 7)
  const medium = Buffer.alloc(300, 1)
  const cases: Array<[string, boolean, Buffer, number]> = [
    ['pings from the sandbox', true, Buffer.concat([RESPONSE, frame(PING, Buffer.alloc(0))]), 0],
    [
      'pongs and a close from the client',
      false,
      Buffer.concat([frame(PONG, Buffer.from('hb'), true), frame(CLOSE, Buffer.alloc(2), true)]),
      0,
    ],
    ['a text message', false, frame(TEXT, Buffer.from('hello'), true), 2 + 4 + 5],
    [
      'heartbeats around a binary message of 300 bytes',
      true,
      Buffer.concat([
        RESPONSE,
        frame(PING, Buffer.from('x')),
        frame(BINARY, medium),
        frame(PING, Buffer.from('y')),
      ]),
      4 + 300,
    ],
    ['a 70 000-byte message (64-bit length)', false, frame(BINARY, big, true), 10 + 4 + 70_000],
  ]
  for (const size of [1, 3, 1000, 1 << 20]) {
    it.each(cases)(`%s (in chunks of ${size} bytes)`, (_name, httpHead, bytes, expected) => {
      expect(measure(new WebSocketMeter({ httpHead }), bytes, size)).toBe(expected)
    })
  }

  it('counts nothing until the response head has ended', () => {
    const meter = new WebSocketMeter({ httpHead: true })
    expect(meter.push(RESPONSE.subarray(0, RESPONSE.length - 2))).toBe(0)
    expect(meter.push(Buffer.concat([RESPONSE.subarray(-2), frame(TEXT, Buffer.from('a'))]))).toBe(
      3,
    )
  })
})
