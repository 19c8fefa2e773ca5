import { createServer } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { describe, expect, it } from 'vitest'
import { readSni } from './sni.js'

/** The ClientHello Node's own TLS client sends for `servername`. */
async function clientHello(servername?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => {
      socket.once('data', (b: Buffer) => {
        resolve(b)
        socket.destroy()
        server.close()
      })
    })
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      const c = tlsConnect({
        host: '127.0.0.1',
        port,
        ...(servername ? { servername } : {}),
        rejectUnauthorized: false,
      })
      c.on('error', () => {})
      setTimeout(() => c.destroy(), 1000)
    })
    server.on('error', reject)
  })
}

describe('readSni', () => {
  it('reads the name of a real ClientHello, and needs the whole record', async () => {
    const hello = await clientHello('Api.Example.test')
    expect(readSni(hello)).toBe('Api.Example.test')
    expect(readSni(hello.subarray(0, 20))).toBe('incomplete')
  })

  it('is null without SNI or for other protocols', async () => {
    expect(readSni(await clientHello())).toBeNull()
    expect(readSni(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeNull()
  })
})
