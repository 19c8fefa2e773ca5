// Nothing is left behind (privileged: runc, netns, nftables): after a kill,
// after creates that fail halfway or are refused, and the refusals carry
// their Warren codes in process and across the RPC network transport.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync } from 'node:fs'
import type { Server } from 'node:http'
import { dirname, join } from 'node:path'
import { Code, ConnectError, createClient } from '@connectrpc/connect'
import { nodeStatusSource, serveOrchestratorRpc } from '@warren/orchestrator'
import {
  clusterTransport,
  newSandboxId,
  newToken,
  toWarrenError,
  WarrenError,
} from '@warren/shared'
import { OrchestratorService } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import { afterEach, describe, expect, it } from 'vitest'
import {
  assertNoLeftovers,
  loopDevicesUnder,
  type NodeFixture,
  startNodeFixture,
  uniquePool,
} from '../helpers/node-fixture.js'
import { underGvisor } from '../helpers/test-isolation.js'
import { sh } from './helpers.js'

// Each test starts its own nodes (no warm network slots, so that every
// leftover check is exact) and tears them down even when it fails.
const nodes: NodeFixture[] = []
const servers: Server[] = []
async function startNode(config: Parameters<typeof startNodeFixture>[0] = {}) {
  const f = await startNodeFixture({ config: { warmNetworkSlots: 0, ...config?.config } })
  nodes.push(f)
  return f
}
afterEach(async (ctx) => {
  const failed = ctx.task.result?.state === 'fail'
  for (const s of servers.splice(0)) s.close()
  const errors: unknown[] = []
  for (const f of nodes.splice(0)) {
    if (failed) console.error(`[${f.prefix}] sandboxes created: ${f.created.join(' ') || '-'}`)
    await f.teardown().catch((err) => errors.push(err))
  }
  if (errors.length) throw new AggregateError(errors, 'teardown failed')
})

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (err instanceof WarrenError) return err.code
  throw new Error(`expected a WarrenError, got ${String(err)}`)
}

describe('kill', () => {
  it('removes everything a sandbox had', async () => {
    const f = await startNode()
    const r = await f.create()
    await sh(f.sdk(r), 'echo data > ~/file && sleep 300 & true')
    await f.node.kill(r.sandboxId)
    await f.node.teardownsSettled()
    await assertNoLeftovers(f.prefix, f.dataDir)
    expect(f.node.list()).toEqual([])
    expect(f.node.info()).toMatchObject({ sandboxes: 0, memoryMbAllocated: 0 })
    expect(await codeOf(f.node.kill(r.sandboxId))).toBe('not_found')
  })

  it('settles concurrent kills of one sandbox with one removal', async () => {
    const f = await startNode()
    const r = await f.create()
    const results = await Promise.allSettled([
      f.node.kill(r.sandboxId),
      f.node.kill(r.sandboxId),
      f.node.kill(r.sandboxId),
    ])
    expect(results.map((x) => x.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled'])
    await f.node.teardownsSettled()
    await assertNoLeftovers(f.prefix, f.dataDir)
  })
})

describe('node start', () => {
  it('lets go of a disk device that a node dying mid-mount left attached', async () => {
    // What a node killed between `losetup --find` and its detach leaves (see mountDisk).
    const dataDir = mkdtempSync('/tmp/warren-loop-')
    const image = join(dataDir, 'sandboxes', 'abcdefghijklmnopqrst', 'disk.img')
    mkdirSync(dirname(image), { recursive: true })
    execFileSync('truncate', ['-s', '8M', image])
    const device = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim()
    try {
      expect(loopDevicesUnder(dataDir)).toHaveLength(1)
      await startNode({ config: { dataDir } })
      expect(loopDevicesUnder(dataDir)).toEqual([])
    } finally {
      // Released already unless the test failed.
      spawnSync('losetup', ['--detach', device])
    }
  })
})

describe('failed creates', () => {
  it('rolls back a sandbox whose first process dies', async () => {
    const f = await startNode({ config: { sandboxCommand: ['/bin/false'] } })
    const err = await f.create().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WarrenError)
    expect((err as WarrenError).code).toBe('internal')
    expect((err as WarrenError).message).toMatch(/exited while starting/)
    await f.node.teardownsSettled()
    await assertNoLeftovers(f.prefix, f.dataDir)
    expect(f.node.info()).toMatchObject({ sandboxes: 0, memoryMbAllocated: 0 })
    // The node is still usable: the address went back to the pool.
    expect(f.node.info().addressesFree).toBe(2 ** 14 - 1)
  })

  it('rolls back a sandbox that runc cannot start, or whose command does not exist', async () => {
    const broken = await startNode({ config: { initPath: '/nonexistent/tini-static' } })
    const err = await broken.create().catch((e: unknown) => e)
    expect((err as WarrenError).code).toBe('internal')
    expect((err as WarrenError).message).toMatch(
      underGvisor ? /runsc run failed/ : /runc run failed/,
    )
    await assertNoLeftovers(broken.prefix, broken.dataDir)

    const missing = await startNode({ config: { sandboxCommand: ['/no/such/program'] } })
    expect(await codeOf(missing.create())).toBe('internal')
    await assertNoLeftovers(missing.prefix, missing.dataDir)
  })

  it('refuses an unknown template, a duplicate id, bad arguments', async () => {
    const f = await startNode()
    expect(await codeOf(f.create({ templateId: 'no-such-template' }))).toBe('not_found')
    expect(await codeOf(f.create({ templateId: 'Bad/Template' }))).toBe('invalid_argument')
    expect(await codeOf(f.create({ sandboxId: 'not-an-id' }))).toBe('invalid_argument')
    expect(await codeOf(f.create({ memoryMb: 16 }))).toBe('invalid_argument')
    expect(await codeOf(f.create({ cpuCount: 4096 }))).toBe('invalid_argument')

    const sandboxId = newSandboxId()
    // Two creates of one id at once: exactly one wins.
    const both = await Promise.allSettled([f.create({ sandboxId }), f.create({ sandboxId })])
    expect(both.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected'])
    const loser = both.find((x) => x.status === 'rejected') as PromiseRejectedResult
    expect((loser.reason as WarrenError).code).toBe('already_exists')
    expect(await codeOf(f.create({ sandboxId }))).toBe('already_exists')
    expect(f.node.list().map((r) => r.sandboxId)).toEqual([sandboxId])
    await f.node.kill(sandboxId)
    await f.node.teardownsSettled()
    await assertNoLeftovers(f.prefix, f.dataDir)
  })

  it('refuses creates beyond the address pool', async () => {
    // A /28 holds 3 sandbox slots (slot 0 is never used).
    const f = await startNode({ config: { addressPool: uniquePool(28) } })
    const made = [await f.create(), await f.create(), await f.create()]
    expect(await codeOf(f.create())).toBe('capacity_exhausted')
    expect(f.node.list()).toHaveLength(3)
    await f.node.kill(made[0]!.sandboxId)
    // A freed slot is usable again.
    const again = await f.create()
    expect(await sh(f.sdk(again), 'echo ok')).toBe('ok\n')
    for (const r of f.node.list()) await f.node.kill(r.sandboxId)
    await f.node.teardownsSettled()
    await assertNoLeftovers(f.prefix, f.dataDir)
  })

  it('refuses creates beyond the memory capacity', async () => {
    const f = await startNode({ config: { memoryCapacityMb: 600 } })
    await f.create({ memoryMb: 256 })
    await f.create({ memoryMb: 256 })
    expect(await codeOf(f.create({ memoryMb: 256 }))).toBe('capacity_exhausted')
    // The template's default (512 MB) does not fit either; 64 MB does.
    expect(await codeOf(f.create())).toBe('capacity_exhausted')
    await f.create({ memoryMb: 64 })
    expect(f.node.info().memoryMbAllocated).toBe(576)
    for (const r of f.node.list()) await f.node.kill(r.sandboxId)
    expect(f.node.info().memoryMbAllocated).toBe(0)
    await f.node.teardownsSettled()
    await assertNoLeftovers(f.prefix, f.dataDir)
  })
})

const RPC_SECRET = newToken()

describe('over the RPC network transport', () => {
  async function rpcClient(f: NodeFixture) {
    const { server, url } = await serveOrchestratorRpc(f.node, {
      host: '127.0.0.1',
      port: 0,
      status: nodeStatusSource(f.node, { rpcUrl: '', proxyUrl: 'http://127.0.0.1:5007' }),
      secret: RPC_SECRET,
    })
    servers.push(server)
    return createClient(OrchestratorService, clusterTransport(url, { secret: RPC_SECRET }))
  }

  it('carries not_found, already_exists and capacity_exhausted as Connect codes and WarrenErrors', async () => {
    const f = await startNode({ config: { memoryCapacityMb: 300 } })
    const rpc = await rpcClient(f)
    const sandboxId = newSandboxId()
    f.created.push(sandboxId)
    const created = await rpc.create({
      sandboxId,
      templateId: 'base',
      memoryMb: 256,
      envdAccessToken: newToken(),
    })
    expect(created.sandbox?.address).toMatch(/^10\./)

    const cases: Array<[() => Promise<unknown>, string, Code]> = [
      [
        () => rpc.create({ sandboxId: newSandboxId(), templateId: 'nope' }),
        'not_found',
        Code.NotFound,
      ],
      [() => rpc.get({ sandboxId: newSandboxId() }), 'not_found', Code.NotFound],
      [() => rpc.kill({ sandboxId: newSandboxId() }), 'not_found', Code.NotFound],
      [
        () => rpc.create({ sandboxId, templateId: 'base', memoryMb: 64 }),
        'already_exists',
        Code.AlreadyExists,
      ],
      [
        () => rpc.create({ sandboxId: newSandboxId(), templateId: 'base', memoryMb: 256 }),
        'capacity_exhausted',
        Code.ResourceExhausted,
      ],
      [
        () => rpc.create({ sandboxId: 'x', templateId: 'base' }),
        'invalid_argument',
        Code.InvalidArgument,
      ],
    ]
    for (const [call, warrenCode, connectCode] of cases) {
      const rawErr = await call().catch((e: unknown) => e)
      expect(rawErr).toBeInstanceOf(ConnectError)
      expect((rawErr as ConnectError).code).toBe(connectCode)
      expect((rawErr as ConnectError).metadata.get('warren-error-code')).toBe(warrenCode)
      // Translated where it enters, it is the WarrenError the node threw.
      expect(toWarrenError(rawErr)).toMatchObject({ code: warrenCode })
    }
    expect((await rpc.list({})).sandboxes.map((s) => s.sandboxId)).toEqual([sandboxId])
    await rpc.kill({ sandboxId })
    expect(toWarrenError(await rpc.kill({ sandboxId }).catch((e: unknown) => e)).code).toBe(
      'not_found',
    )
    await f.node.teardownsSettled()
    await assertNoLeftovers(f.prefix, f.dataDir)
  })

  it('rolls back a failed create made over RPC', async () => {
    const f = await startNode({ config: { sandboxCommand: ['/bin/false'] } })
    const rpc = await rpcClient(f)
    const sandboxId = newSandboxId()
    f.created.push(sandboxId)
    const err = await rpc.create({ sandboxId, templateId: 'base' }).catch((e: unknown) => e)
    expect(toWarrenError(err).code).toBe('internal')
    expect((await rpc.nodeInfo({})).status?.sandboxes).toBe(0)
    await f.node.teardownsSettled()
    await assertNoLeftovers(f.prefix, f.dataDir)
  })
})
