import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { listen } from '@warren/shared/listen'
import { afterEach, describe, expect, it } from 'vitest'
import { checkpointReadiness } from './checkpoint.js'

let server: Server | undefined
let dir: string | undefined
afterEach(() => {
  server?.closeAllConnections()
  server?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function start(quiesceMs = 60_000) {
  dir = mkdtempSync(join(tmpdir(), 'envd-checkpoint-'))
  const timeWaitFile = join(dir, 'run', 'time-wait')
  server = createServer({ keepAliveTimeout: 65_000 }, (_req, res) => res.end('ok'))
  await listen(server, '127.0.0.1', 0)
  const port = (server.address() as { port: number }).port
  const readiness = checkpointReadiness(server, '127.0.0.1', port, { timeWaitFile, quiesceMs })
  return { port, timeWaitFile, readiness }
}

/** One GET; `close` asks the server to close the connection after answering. */
function get(port: number, close: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        agent: false,
        headers: { connection: close ? 'close' : 'keep-alive' },
      },
      (res) => {
        res.resume()
        res.on('end', () => {
          // The client closes first unless the server already did.
          req.destroy()
          resolve()
        })
      },
    )
    req.on('error', reject)
    req.end()
  })
}

const connects = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })

const waitFor = async (what: () => boolean) => {
  for (let i = 0; i < 100 && !what(); i++) await new Promise((r) => setTimeout(r, 20))
  return what()
}

describe('checkpointReadiness', () => {
  it('notes when a connection envd closed first leaves TIME_WAIT', async () => {
    const { port, timeWaitFile } = await start()
    const before = Date.now()
    await get(port, true)
    expect(await waitFor(() => existsSync(timeWaitFile))).toBe(true)
    const until = Number(readFileSync(timeWaitFile, 'utf8'))
    expect(until).toBeGreaterThanOrEqual(before + 60_000)
    expect(until).toBeLessThan(Date.now() + 61_000)
  })

  it('notes nothing when the client closes first', async () => {
    const { port, timeWaitFile } = await start()
    await get(port, false)
    await new Promise((r) => setTimeout(r, 200))
    expect(existsSync(timeWaitFile)).toBe(false)
  })

  it('resets its connections, refuses new ones for a moment, then listens again', async () => {
    const { port, timeWaitFile, readiness } = await start(300)
    const open = connect(port, '127.0.0.1')
    await new Promise((r) => open.once('connect', r))
    const ended = new Promise<string>((resolve) => {
      open.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
      open.once('close', () => resolve('closed'))
    })
    await new Promise((r) => setTimeout(r, 50))
    readiness.quiesce()
    expect(await ended).toBe('ECONNRESET')
    expect(await connects(port)).toBe(false)
    await new Promise((r) => setTimeout(r, 500))
    expect(await connects(port)).toBe(true)
    // After a restore the node says so: it listens again at once.
    readiness.quiesce()
    expect(await connects(port)).toBe(false)
    readiness.resume()
    expect(await waitFor(() => server?.listening === true)).toBe(true)
    expect(await connects(port)).toBe(true)
    // A reset is no TIME_WAIT.
    expect(existsSync(timeWaitFile)).toBe(false)
  })
})
