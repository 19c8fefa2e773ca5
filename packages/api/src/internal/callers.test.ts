import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addCluster, removeCluster } from '../store/clusters.js'
import { type InProcessApi, startInProcessApi } from '../testing/in-process.js'
import { createClusterGate } from './callers.js'

// The internal port's gate: the API's own secret is its own cluster, a
// remote cluster's secret (kept hashed in the store) is that cluster, and
// /metrics opens to the API's own secret (or its scrape token) only.

const OWN = 'own-cluster-secret-0123456789'
const SCRAPE = 'scrape-token-0123456789'
let api: InProcessApi
let server: Server
let base: string
let east: string

beforeAll(async () => {
  api = await startInProcessApi()
  east = (await addCluster(api.db, 'east')).secret
  const gate = createClusterGate({
    db: api.db,
    secret: OWN,
    what: 'the test port',
    log: pino({ level: 'silent' }),
    own: { '/metrics': [SCRAPE] },
  })
  // The handler answers with the cluster the gate found, as the RPC handlers see it.
  server = createServer(
    gate.guard((req, res) => res.end(JSON.stringify({ cluster: gate.caller(req)?.cluster }))),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await api.close()
})

const call = (path: string, secret?: string) =>
  fetch(`${base}${path}`, secret ? { headers: { 'x-warren-cluster-secret': secret } } : {})

describe('the internal port gate', () => {
  it.each([
    ['no secret', '/rpc', undefined, 401],
    ['a secret of no cluster', '/rpc', 'not-a-cluster-secret-0123', 403],
    ["the API's own secret", '/rpc', OWN, 200],
    ['the scrape token outside /metrics', '/rpc', SCRAPE, 403],
    ['the scrape token on /metrics', '/metrics', SCRAPE, 200],
    ["the API's own secret on /metrics", '/metrics', OWN, 200],
  ])('%s: %s', async (_name, path, secret, status) => {
    const res = await call(path, secret)
    expect(res.status).toBe(status)
    // The API's own cluster is null.
    if (status === 200) expect(await res.json()).toEqual({ cluster: null })
  })

  it("takes a remote cluster's secret, but not on /metrics; a removed cluster's is refused", async () => {
    const res = await call('/rpc', east)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ cluster: 'east' })
    expect((await call('/metrics', east)).status).toBe(403)
    const west = (await addCluster(api.db, 'west')).secret
    expect((await call('/rpc', west)).status).toBe(200)
    await removeCluster(api.db, 'west')
    // Believed for a few seconds at most after its removal.
    await expect
      .poll(async () => (await call('/rpc', west)).status, { timeout: 8000, interval: 500 })
      .toBe(403)
  })
})
