import { describe, expect, it } from 'vitest'
import { ChunkedDecoder, framingOf, parseResponseHead } from './response-framing.js'

const head = (...lines: string[]) => parseResponseHead(['HTTP/1.1 200 OK', ...lines].join('\r\n'))!

describe('parseResponseHead', () => {
  it('reads the status and the headers in order, repeats kept', () => {
    expect(
      parseResponseHead('HTTP/1.1 404 Not Found\r\nA: 1\r\nSet-Cookie: x\r\nset-cookie: y'),
    ).toEqual({
      status: 404,
      headers: [
        ['A', '1'],
        ['Set-Cookie', 'x'],
        ['set-cookie', 'y'],
      ],
    })
    expect(parseResponseHead('HTTP/1.0 204')).toEqual({ status: 204, headers: [] })
  })

  it.each([
    ['HTTP/2 200 OK'],
    ['HTTP/1.1 20 OK'],
    ['HTTP/1.1 200 OK\r\nNo-Colon'],
    ['HTTP/1.1 200 OK\r\nA: 1\r\n folded'],
    ['HTTP/1.1 200 OK\r\nBad Name: 1'],
    ['HTTP/1.1 200 OK\r\nA: x\ry'],
  ])('refuses %j', (text) => {
    expect(parseResponseHead(text)).toBeUndefined()
  })
})

describe('framingOf', () => {
  it('knows the answers without a body', () => {
    expect(framingOf('HEAD', head('Content-Length: 10'))).toEqual({ kind: 'none' })
    for (const status of [204, 304, 100]) {
      expect(framingOf('GET', { status, headers: [['Content-Length', '5']] })).toEqual({
        kind: 'none',
      })
    }
  })

  it('reads Content-Length, chunked and close-delimited bodies', () => {
    expect(framingOf('GET', head('Content-Length: 42'))).toEqual({ kind: 'length', length: 42 })
    expect(framingOf('GET', head('content-length: 7, 7'))).toEqual({ kind: 'length', length: 7 })
    expect(framingOf('GET', head('Transfer-Encoding: gzip, Chunked'))).toEqual({ kind: 'chunked' })
    expect(framingOf('GET', head('Transfer-Encoding: gzip'))).toEqual({ kind: 'close' })
    expect(framingOf('GET', head())).toEqual({ kind: 'close' })
  })

  it.each([
    [['Content-Length: 1', 'Content-Length: 2']],
    [['Content-Length: 1, 2']],
    [['Content-Length: -1']],
    [['Content-Length: 0x10']],
    [['Transfer-Encoding: chunked', 'Content-Length: 5']],
    [['Transfer-Encoding: chunked, gzip, chunked']],
  ])('refuses the ambiguous %j', (lines) => {
    expect(framingOf('GET', head(...lines))).toBeUndefined()
  })
})

describe('ChunkedDecoder', () => {
  const body = Buffer.from(
    '5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\nNEXT',
  )

  it('hands out the data and stops after the trailers, fed whole or a byte at a time', () => {
    for (const step of [body.length, 7, 1]) {
      const d = new ChunkedDecoder()
      const data: string[] = []
      let stop = -2
      for (let i = 0; i < body.length && !d.done; i += step) {
        stop = d.feed(body, i, Math.min(i + step, body.length), (a, b) =>
          data.push(body.subarray(a, b).toString()),
        )
        expect(stop).not.toBe(-1)
      }
      expect(d.done).toBe(true)
      expect(data.join('')).toBe('helloabcdefghijklmnopqrstuvwxyz')
      expect(body.subarray(stop).toString()).toBe('NEXT')
    }
  })

  it.each([['zz\r\n'], ['5\r\nhelloXX\r\n'], ['5\nhello\r\n']])('refuses %j', (text) => {
    const b = Buffer.from(text)
    expect(new ChunkedDecoder().feed(b, 0, b.length, () => {})).toBe(-1)
  })
})
