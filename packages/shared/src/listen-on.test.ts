import { once } from 'node:events'
import { createServer, get } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_LISTEN_HOSTS, type Listening, listenOn } from './listen.js'

const opened: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const close of opened.splice(0)) await close()
})

async function serve(host: string | undefined): Promise<Listening> {
  const server = createServer((req, res) => res.end(req.socket.localAddress))
  const listening = await listenOn(server, 0, host)
  opened.push(async () => {
    const closed = Promise.all([listening.close(), new Promise((r) => server.close(r))])
    server.closeAllConnections()
    await closed
  })
  return listening
}

function fetchFrom(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host, port, path: '/', agent: false }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve(body))
    }).on('error', (err: NodeJS.ErrnoException) => reject(err))
  })
}

describe('listenOn', () => {
  it('without a host: one server on both loopbacks, one port', async () => {
    const l = await serve(undefined)
    expect(l.hosts).toEqual([...DEFAULT_LISTEN_HOSTS])
    expect(l.url).toBe(`http://127.0.0.1:${l.port}`)
    expect(await fetchFrom('127.0.0.1', l.port)).toBe('127.0.0.1')
    expect(await fetchFrom('::1', l.port)).toBe('::1')
  })

  it('an explicit host means that host only', async () => {
    const l = await serve('127.0.0.1')
    expect(l.hosts).toEqual(['127.0.0.1'])
    await expect(fetchFrom('::1', l.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    const v6 = await serve('::1')
    expect(v6.url).toBe(`http://[::1]:${v6.port}`)
    expect(await fetchFrom('::1', v6.port)).toBe('::1')
  })

  it('fails whole when the port is taken on the second loopback', async () => {
    const blocker = createServer()
    blocker.listen(0, '::1')
    await once(blocker, 'listening')
    const port = (blocker.address() as { port: number }).port
    try {
      const server = createServer()
      await expect(listenOn(server, port, undefined)).rejects.toMatchObject({ code: 'EADDRINUSE' })
      expect(server.listening).toBe(false)
    } finally {
      blocker.close()
    }
  })
})
