import { once } from 'node:events'
import { createServer, request as httpRequest, type Server } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { type AddressInfo, connect as netConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { createCertificateAuthority } from '@warren/shared/pki'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { acceptTlsToo, type SamePortTls } from './same-port.js'

let ca: string
let tlsOptions: { cert: string; key: string }
beforeAll(async () => {
  const made = await createCertificateAuthority({ commonName: 'same-port test' })
  const leaf = await made.ca.issue({
    commonName: 'localhost',
    dnsNames: ['localhost'],
    usages: ['server'],
  })
  ca = made.ca.certPem
  tlsOptions = { cert: leaf.certPem, key: leaf.keyPem }
})

let server: Server
let tls: SamePortTls
let port: number
afterEach(async () => {
  const closed = new Promise<void>((r) => server.close(() => r()))
  server.closeAllConnections()
  tls.close()
  await closed
})

/** An HTTP server that answers with the request's socket identity and whether it was TLS, plus a WebSocket echo. */
async function start(serves?: (name: string) => boolean): Promise<void> {
  let next = 0
  const ids = new WeakMap<object, number>()
  server = createServer((req, res) => {
    if (!ids.has(req.socket)) ids.set(req.socket, ++next)
    res.end(
      JSON.stringify({ socket: ids.get(req.socket), tls: 'encrypted' in req.socket, url: req.url }),
    )
  })
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(`echo ${m}`))),
  )
  tls = acceptTlsToo(server, tlsOptions, serves)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  port = (server.address() as AddressInfo).port
}

type Agentish = { keepAlive: true; maxSockets: 1 }
async function get(
  scheme: 'http' | 'https',
  path: string,
  agent?: unknown,
): Promise<Record<string, unknown>> {
  const request = scheme === 'http' ? httpRequest : httpsRequest
  return new Promise((resolve, reject) => {
    const r = request(
      { host: '127.0.0.1', port, path, servername: 'localhost', ca, agent: agent as never },
      (res) => {
        let body = ''
        res.on('data', (c) => {
          body += c
        })
        res.on('end', () => resolve(JSON.parse(body)))
      },
    )
    r.on('error', reject)
    r.end()
  })
}

describe('TLS and plain HTTP on one port', () => {
  it('serves both, with keep-alive on each', async () => {
    await start()
    const { Agent: HttpAgent } = await import('node:http')
    const { Agent: HttpsAgent } = await import('node:https')
    const plainAgent = new HttpAgent({ keepAlive: true, maxSockets: 1 } satisfies Agentish)
    const tlsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 1 })
    try {
      const a = await get('http', '/a', plainAgent)
      const b = await get('http', '/b', plainAgent)
      expect(a).toMatchObject({ tls: false, url: '/a' })
      expect(b.socket).toBe(a.socket)
      const c = await get('https', '/c', tlsAgent)
      const d = await get('https', '/d', tlsAgent)
      expect(c).toMatchObject({ tls: true, url: '/c' })
      expect(d.socket).toBe(c.socket)
      expect(c.socket).not.toBe(a.socket)
    } finally {
      plainAgent.destroy()
      tlsAgent.destroy()
    }
  })

  it('upgrades WebSockets over both', async () => {
    await start()
    // ws hands TLS options to tls.connect; its types omit servername.
    const clientTls = { ca, servername: 'localhost' }
    for (const url of [`ws://127.0.0.1:${port}/`, `wss://127.0.0.1:${port}/`]) {
      const ws = new WebSocket(url, clientTls)
      await once(ws, 'open')
      ws.send('hi')
      const [msg] = await once(ws, 'message')
      expect(String(msg)).toBe('echo hi')
      ws.close()
    }
  })

  it('a request split into one-byte writes still arrives whole', async () => {
    await start()
    const socket = netConnect(port, '127.0.0.1')
    await once(socket, 'connect')
    for (const ch of 'GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n') {
      socket.write(ch)
      await new Promise((r) => setTimeout(r, 1))
    }
    let text = ''
    socket.on('data', (d) => {
      text += d
    })
    await once(socket, 'end')
    expect(text).toMatch(/^HTTP\/1\.1 200/)
    expect(text).toContain('"url":"/slow"')
  })

  it('a failed handshake ends that connection only; the server keeps serving', async () => {
    await start()
    const refused = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost' }) // no CA: we refuse it
    const [err] = await once(refused, 'error')
    expect((err as NodeJS.ErrnoException).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE')
    const garbage = netConnect(port, '127.0.0.1')
    garbage.end(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x01, 0xff]))
    await once(garbage, 'close')
    expect(await get('https', '/after')).toMatchObject({ tls: true, url: '/after' })
    expect(await get('http', '/after')).toMatchObject({ tls: false, url: '/after' })
  })

  it('answers a name it does not serve with the alert unrecognized_name', async () => {
    await start((name) => name === 'localhost')
    const refused = tlsConnect({ host: '127.0.0.1', port, servername: 'example.com', ca })
    const [err] = await once(refused, 'error')
    expect((err as NodeJS.ErrnoException).code).toBe('ERR_SSL_TLSV1_UNRECOGNIZED_NAME')
    expect(await get('https', '/served')).toMatchObject({ tls: true, url: '/served' })
  })

  it('close ends silent connections too', async () => {
    await start()
    const silent = netConnect(port, '127.0.0.1')
    await once(silent, 'connect')
    const closedByServer = once(silent, 'close')
    const closed = new Promise<void>((r) => server.close(() => r()))
    tls.close()
    await closed
    await closedByServer
    server = createServer()
    server.listen(0)
    await once(server, 'listening')
  })
})
