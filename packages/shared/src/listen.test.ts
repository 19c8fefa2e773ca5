import { createServer as createHttpServer } from 'node:http'
import { createServer, type Server } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { httpUrl, listen } from './listen.js'

describe('httpUrl', () => {
  it.each([
    { host: '127.0.0.1', port: 3000, want: 'http://127.0.0.1:3000' },
    { host: 'localhost', port: 80, want: 'http://localhost:80' },
    { host: '0.0.0.0', port: 5008, want: 'http://0.0.0.0:5008' },
    { host: '::1', port: 3002, want: 'http://[::1]:3002' },
    { host: '::', port: 5007, want: 'http://[::]:5007' },
    { host: 'fe80::1', port: 1, want: 'http://[fe80::1]:1' },
  ])('$host:$port → $want', ({ host, port, want }) => {
    expect(httpUrl(host, port)).toBe(want)
    expect(URL.canParse(want)).toBe(true)
  })
})

describe('listen', () => {
  const servers: Server[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
  })

  it('resolves with the URL of the port actually bound (http and net servers)', async () => {
    for (const server of [createHttpServer(), createServer()]) {
      servers.push(server)
      const url = await listen(server, '127.0.0.1', 0)
      const port = (server.address() as { port: number }).port
      expect(port).toBeGreaterThan(0)
      expect(url).toBe(`http://127.0.0.1:${port}`)
    }
  })

  it('brackets an IPv6 host', async () => {
    const server = createHttpServer((_req, res) => res.end('v6'))
    servers.push(server)
    const url = await listen(server, '::1', 0).catch((err: NodeJS.ErrnoException) => {
      // A host without IPv6 loopback cannot run this case.
      if (err.code === 'EADDRNOTAVAIL') return undefined
      throw err
    })
    if (!url) return
    expect(url).toMatch(/^http:\/\/\[::1\]:\d+$/)
    expect(await (await fetch(url)).text()).toBe('v6')
  })

  it("rejects with the server's error and leaves no listener behind", async () => {
    const taken = createServer()
    servers.push(taken)
    const url = await listen(taken, '127.0.0.1', 0)
    const second = createServer()
    await expect(listen(second, '127.0.0.1', Number(new URL(url).port))).rejects.toMatchObject({
      code: 'EADDRINUSE',
    })
    expect(second.listenerCount('error')).toBe(0)
    expect(second.listenerCount('listening')).toBe(0)
  })
})
