// `warren proxy` as its own process, as a multi-process deployment runs it:
// following the API's catalog over the network, and answering (not hanging)
// while the API cannot be reached.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { CLI } from '../helpers/cli.js'
import { freePort } from '../helpers/node-fixture.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)
const children: ChildProcessWithoutNullStreams[] = []

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
})

/** Starts `warren proxy` against `apiInternalUrl`; resolves with its URL once it listens. */
async function startProxy(apiInternalUrl: string): Promise<string> {
  const port = await freePort()
  const child = spawn(process.execPath, [CLI, 'proxy'], {
    env: {
      ...process.env,
      WARREN_PROXY_PORT: String(port),
      WARREN_API_INTERNAL_URL: apiInternalUrl,
      // The cluster secret `warren up` made for itself.
      WARREN_CLUSTER_SECRET_FILE: `${warren().dataDir}/cluster/secret`,
    },
  })
  children.push(child)
  let out = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`warren proxy did not start: ${out}`)), 20_000)
    // Its log (either stream) says when it listens.
    const onData = (b: Buffer) => {
      out += b.toString()
      if (out.includes('proxy listening')) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`warren proxy exited ${code}: ${out}`))
    })
  })
  return `http://127.0.0.1:${port}`
}

function get(url: string, headers: Record<string, string>) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: unknown }>(
    (resolve, reject) => {
      const r = request(url, { headers, agent: false }, (res) => {
        let text = ''
        res.on('data', (d: Buffer) => (text += d.toString()))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }),
        )
      })
      r.on('error', reject)
      r.setTimeout(30_000, () => r.destroy(new Error('no answer from the proxy')))
      r.end()
    },
  )
}

describe('warren proxy as a separate process', () => {
  it('routes SDK traffic by the catalog it follows over the network', async () => {
    const proxyUrl = await startProxy(`http://127.0.0.1:${warren().ports.internal}`)
    const sbx = await sandboxes.create({ sandboxUrl: proxyUrl, timeoutMs: 60_000 })
    expect((await sbx.commands.run('echo via the standalone proxy')).stdout).toBe(
      'via the standalone proxy\n',
    )
    expect(await sbx.kill()).toBe(true)
    // The kill reaches it through the catalog stream.
    await eventually('the standalone proxy sees the kill', async () => !(await sbx.isRunning()))
  })

  it('answers 503 with Retry-After while the API cannot be reached', async () => {
    const proxyUrl = await startProxy(`http://127.0.0.1:${await freePort()}`)
    const id = 'zzzzzzzzzzzzzzzzzzz0'
    const res = await get(`${proxyUrl}/health`, { 'e2b-sandbox-id': id })
    expect(res.status).toBe(503)
    expect(res.headers['retry-after']).toBe('1')
    expect(res.body).toEqual({ sandboxId: id, port: 49983, code: 503, message: expect.any(String) })
  })
})
