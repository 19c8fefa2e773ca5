import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadApiConfig } from '@warren/shared'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createApiService } from './service.js'
import { StandInNode } from './testing/stand-in-node.js'

const HOST = '127.0.0.1'
const undo: Array<() => unknown> = []

afterEach(async () => {
  for (let f = undo.pop(); f; f = undo.pop()) await f()
})

/** A loopback server on a free port, closed after the test. */
async function occupy(): Promise<{ server: Server; port: number }> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, resolve)
  })
  undo.push(() => new Promise((resolve) => server.close(resolve)))
  const address = server.address()
  if (!address || typeof address === 'string') throw new Error('no port')
  return { server, port: address.port }
}

async function freePort(): Promise<number> {
  const { server, port } = await occupy()
  await new Promise((resolve) => server.close(resolve))
  return port
}

const SECRET = 'service-test-cluster-secret'
const SCRAPE_TOKEN = 'service-test-scrape-token'

async function service(port: number, internalPort: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'warren-api-listen-'))
  undo.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const cfg = loadApiConfig(
    {
      dataDir,
      listenHost: HOST,
      port,
      internalPort,
      clusterSecret: SECRET,
      metricsToken: SCRAPE_TOKEN,
    },
    {},
  )
  const api = await createApiService(cfg, pino({ level: 'silent' }), [new StandInNode().transport])
  undo.push(() => api.stop())
  return api
}

describe('listen()', () => {
  it('closes the REST server it opened when the internal port is taken', async () => {
    const restPort = await freePort()
    const { port: taken } = await occupy()
    const api = await service(restPort, taken)

    await expect(api.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' })

    // The REST port is free again: nothing of the failed listen() holds it.
    const again = createServer()
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject)
      again.listen(restPort, HOST, resolve)
    })
    await new Promise((resolve) => again.close(resolve))
  })

  it('answers on both ports when both are free', async () => {
    const api = await service(await freePort(), await freePort())
    const { url, internalUrl } = await api.listen()
    expect((await fetch(`${url}/health`)).status).toBe(200)
    const metrics = (headers: Record<string, string>) =>
      fetch(`${internalUrl}/metrics`, { headers }).then((r) => r.status)
    expect(await metrics({ 'x-warren-cluster-secret': SECRET })).toBe(200)
    expect(await metrics({ authorization: `Bearer ${SCRAPE_TOKEN}` })).toBe(200)
  })

  it('refuses the internal port to callers without the cluster secret', async () => {
    const api = await service(await freePort(), await freePort())
    const { internalUrl } = await api.listen()
    const none = await fetch(`${internalUrl}/metrics`)
    expect(none.status).toBe(401)
    expect(await none.json()).toMatchObject({ code: 401, message: expect.any(String) })
    const wrong = await fetch(`${internalUrl}/metrics`, {
      headers: { 'x-warren-cluster-secret': 'not-the-cluster-secret' },
    })
    expect(wrong.status).toBe(403)
    // The scrape token opens /metrics only, not the RPC.
    const rpc = await fetch(`${internalUrl}/warren.api.v1.ProxyService/GetRoute`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SCRAPE_TOKEN}`, 'content-type': 'application/json' },
      body: '{}',
    })
    expect(rpc.status).toBe(403)
  })
})
