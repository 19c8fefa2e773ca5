// Warren as separate processes — `warren orchestrator`, `warren api` (placing
// on the node over the orchestrator RPC network transport) and `warren proxy`
// (following the API's catalog over its internal RPC) — driven by the SDK; and
// each component keeps working when another one restarts.
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { newToken } from '@warren/shared'
import { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { CLI } from '../helpers/cli.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { teardownWarrenHost, type WarrenSetup, warrenSetup } from '../helpers/warren-fixture.js'

type Component = 'orchestrator' | 'api' | 'proxy'

const procs = new Map<Component, ChildProcess>()
let setup: WarrenSetup | undefined
let env: Record<string, string> = {}
let sdk: { apiUrl: string; sandboxUrl: string; apiKey: string }

/** Starts one component and waits for the line that says it listens. */
function start(component: Component, ready: RegExp): Promise<void> {
  const child = spawn(process.execPath, [CLI, component], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  procs.set(component, child)
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${component} did not start:\n${out}`)), 60_000)
    const onData = (b: Buffer) => {
      out += b.toString()
      if (ready.test(out)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${component} exited ${code}:\n${out}`))
    })
  })
}

async function stop(component: Component): Promise<void> {
  const child = procs.get(component)
  procs.delete(component)
  if (!child || child.exitCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  await exited
}

const startOrchestrator = () => start('orchestrator', /orchestrator listening/)
const startApi = () => start('api', /api listening/)
const startProxy = () => start('proxy', /proxy listening/)

/** GET through the proxy with a Host of `{port}-{id}.{domain}`. */
function viaProxy(host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: Number(new URL(sdk.sandboxUrl).port),
        path: '/',
        headers: { host },
        agent: false,
      },
      (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

beforeAll(async () => {
  setup = await warrenSetup('mp')
  const { ports, prefix } = setup
  env = {
    ...setup.env,
    WARREN_NODES: `test-${prefix}=http://127.0.0.1:${ports.rpc}`,
    WARREN_API_INTERNAL_URL: `http://127.0.0.1:${ports.internal}`,
    WARREN_DOMAIN: `localhost:${ports.proxy}`,
    WARREN_NODE_SYNC_INTERVAL: '1',
    // One secret for the three processes.
    WARREN_CLUSTER_SECRET: newToken(),
  }
  await startOrchestrator()
  await startApi()
  await startProxy()
  sdk = {
    apiUrl: `http://127.0.0.1:${ports.api}`,
    sandboxUrl: `http://127.0.0.1:${ports.proxy}`,
    apiKey: readFileSync(join(setup.dataDir, 'first-api-key'), 'utf8').trim(),
  }
}, 120_000)

afterAll(async () => {
  for (const c of ['proxy', 'api', 'orchestrator'] as const) await stop(c)
  if (setup) await teardownWarrenHost(setup)
}, 120_000)

// After the teardown above, so that its hooks run first: what a test leaves is
// killed while the processes still run.
const sandboxes = useSandboxes(() => ({
  prefix: setup?.prefix ?? 'mp',
  sdk,
  apiUrl: sdk.apiUrl,
  apiKey: sdk.apiKey,
}))

/** The stdout of `cmd` once the SDK can run it (routes may take a moment to come back). */
async function runWhenRouted(sbx: Sandbox, cmd: string, what: string): Promise<string> {
  let out = ''
  await eventually(
    what,
    async () => {
      out = await sbx.commands.run(cmd).then(
        (r) => r.stdout,
        () => '',
      )
      return out !== ''
    },
    30_000,
    200,
  )
  return out
}

describe('separate processes', () => {
  it('serve the SDK end to end over the network transports', async () => {
    const sbx = await sandboxes.create({ timeoutMs: 120_000 })
    expect((await sbx.commands.run('hostname')).stdout.trim()).toBe(sbx.sandboxId)
    await sbx.files.write('/home/user/mp.txt', 'across processes')
    expect(await sbx.files.read('/home/user/mp.txt')).toBe('across processes')
    await sbx.commands.run('python3 -m http.server 8000', { background: true, timeoutMs: 0 })
    let res = { status: 0, body: '' }
    // The server takes a moment to listen; until then the proxy answers 502.
    await eventually(
      'the server in the sandbox answers through the proxy',
      async () => {
        res = await viaProxy(sbx.getHost(8000))
        return res.status === 200
      },
      5000,
      100,
    )
    expect(res.body).toContain('Directory listing')
    expect(await sbx.kill()).toBe(true)
    expect(await sbx.isRunning()).toBe(false)
  })

  it('keeps sandboxes reachable while the API restarts, and the proxy resumes them afterwards', async () => {
    const sbx = await sandboxes.create({
      timeoutMs: 120_000,
      lifecycle: { onTimeout: 'pause', autoResume: true },
    })
    await stop('api')
    // The proxy keeps its catalog and the node keeps running the sandbox.
    expect((await sbx.commands.run('echo still here')).stdout).toBe('still here\n')
    await startApi()
    await sbx.pause()
    expect((await Sandbox.getInfo(sbx.sandboxId, sdk)).state).toBe('paused')
    // A command through the (separate) proxy resumes it via the API's internal RPC.
    expect((await sbx.commands.run('echo resumed')).stdout).toBe('resumed\n')
    expect((await Sandbox.getInfo(sbx.sandboxId, sdk)).state).toBe('running')
  })

  it('routes again once a node that was down when the API started comes back', async () => {
    const sbx = await sandboxes.create({ timeoutMs: 120_000 })
    await stop('api')
    await stop('orchestrator')
    // The API starts without its node: the node's routes have no proxy yet.
    await startApi()
    await startOrchestrator()
    // Node sync (every second here) finds the node and its routes follow.
    expect(await runWhenRouted(sbx, 'echo back', 'the sandbox is routed again')).toBe('back\n')
    expect((await Sandbox.getInfo(sbx.sandboxId, sdk)).state).toBe('running')
  })

  it('keeps sandboxes when the orchestrator restarts, and the proxy follows a restarted API', async () => {
    const sbx = await sandboxes.create({ timeoutMs: 120_000 })
    await sbx.files.write('/home/user/before.txt', 'kept')
    await stop('orchestrator')
    await startOrchestrator()
    expect(await sbx.files.read('/home/user/before.txt')).toBe('kept')
    await stop('api')
    await startApi()
    // The proxy reconnects its catalog stream and still routes.
    expect(await runWhenRouted(sbx, 'echo routed', 'the proxy routes again')).toBe('routed\n')
  })
})
