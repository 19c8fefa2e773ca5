import cluster from 'node:cluster'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type { Channel } from './channel.js'
import { WorkerGroup } from './group.js'

// A worker that, asked to close, leaves its IPC channel and exits only a
// while later: the window in which a real worker's primary still sees it
// alive (its 'exit' not yet in) while every send to it fails.
const SLOW_EXIT_WORKER = `
process.on('message', (m) => {
  if (m && m.t === 'call' && m.method === 'close') {
    process.send({ t: 'reply', id: m.id, value: null }, () => {
      process.disconnect()
      setTimeout(() => process.exit(0), 300)
    })
  }
})
process.send({ t: 'note', method: 'ready', args: [] })
`

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('WorkerGroup', () => {
  it('drops what the primary sends a worker between its channel closing and its exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-group-'))
    dirs.push(dir)
    const exec = join(dir, 'worker.mjs')
    writeFileSync(exec, SLOW_EXIT_WORKER)
    let channel: Channel | undefined
    const group = new WorkerGroup<number>({
      name: 'test worker',
      exec,
      count: 1,
      log: pino({ level: 'silent' }),
      attach: (c) => {
        channel = c
        return { listening: Promise.resolve(1), detach: () => {} }
      },
    })
    expect(await group.listen()).toEqual([1])
    const worker = Object.values(cluster.workers ?? {})[0]
    expect(worker).toBeDefined()
    const disconnected = new Promise((resolve) => worker!.once('disconnect', resolve))
    const closed = group.close()
    await disconnected
    expect(worker!.isDead()).toBe(false)
    // A note of a node change (a warm sandbox removed at shutdown) in the
    // window: it must go nowhere, not end this process with an 'error' event.
    channel!.note('nodeChanged', 'http://node', 'sbx')
    await expect(channel!.call('metrics')).rejects.toThrow(/gone/)
    await closed
    expect(worker!.isDead()).toBe(true)
  })
})
