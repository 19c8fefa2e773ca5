import { Code, ConnectError, createClient } from '@connectrpc/connect'
import { createConnectTransport } from '@connectrpc/connect-node'
import { EventType, Filesystem } from '@warren/shared/gen/filesystem/filesystem_pb'
import { Process, Signal } from '@warren/shared/gen/process/process_pb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { initEnvd, type RunningEnvd, startEnvd } from './harness.js'

// The RPCs the SDK does not exercise, over the binary Connect protocol.
let envd: RunningEnvd
let proc: ReturnType<typeof createClient<typeof Process>>
let fs: ReturnType<typeof createClient<typeof Filesystem>>
const TOKEN = 'rpc-token'
const headers = { 'X-Access-Token': TOKEN }

beforeAll(async () => {
  envd = await startEnvd()
  await initEnvd(envd, { defaultUser: 'user', accessToken: TOKEN })
  const transport = createConnectTransport({
    baseUrl: envd.url,
    httpVersion: '1.1',
    useBinaryFormat: true,
  })
  proc = createClient(Process, transport)
  fs = createClient(Filesystem, transport)
})
afterAll(async () => {
  await envd?.stop()
})

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e) => ConnectError.from(e).code,
  )

describe('process over binary Connect', () => {
  it('starts a tagged process, re-attaches by tag and feeds it with StreamInput', async () => {
    const started = proc.start(
      { process: { cmd: '/bin/cat' }, tag: 'my-cat', stdin: true },
      { headers },
    )
    const first = await started[Symbol.asyncIterator]().next()
    expect(first.value.event?.event.case).toBe('start')
    const pid = first.value.event.event.value.pid as number
    expect((await proc.list({}, { headers })).processes.find((p) => p.pid === pid)?.tag).toBe(
      'my-cat',
    )

    const attached = proc.connect(
      { process: { selector: { case: 'tag', value: 'my-cat' } } },
      { headers },
    )
    const out: string[] = []
    let streamStarted = false
    const reading = (async () => {
      for await (const res of attached) {
        const e = res.event?.event
        if (e?.case === 'start') streamStarted = true
        if (e?.case === 'data' && e.value.output.case === 'stdout')
          out.push(new TextDecoder().decode(e.value.output.value))
        if (e?.case === 'end') return e.value
      }
    })()
    // The stream starts with `start` once envd has attached it: output from then on reaches it.
    await eventually('the connect stream is attached', () => streamStarted)
    async function* input() {
      yield {
        event: {
          case: 'start' as const,
          value: { process: { selector: { case: 'pid' as const, value: pid } } },
        },
      }
      yield {
        event: {
          case: 'data' as const,
          value: {
            input: {
              input: { case: 'stdin' as const, value: new TextEncoder().encode('streamed') },
            },
          },
        },
      }
    }
    await proc.streamInput(input(), { headers })
    await proc.closeStdin({ process: { selector: { case: 'pid', value: pid } } }, { headers })
    const end = await reading
    expect(end).toMatchObject({ exitCode: 0, exited: true, status: 'exit status 0' })
    expect(out.join('')).toBe('streamed')
  })

  it('maps bad requests to Connect codes', async () => {
    expect(
      await codeOf(proc.sendSignal({ process: {}, signal: Signal.SIGKILL }, { headers })),
    ).toBe(Code.InvalidArgument)
    expect(
      await codeOf(
        proc.sendSignal(
          { process: { selector: { case: 'tag', value: 'nope' } }, signal: Signal.SIGTERM },
          { headers },
        ),
      ),
    ).toBe(Code.NotFound)
    expect(
      await codeOf(
        proc.update({ process: { selector: { case: 'pid', value: 1 << 30 } } }, { headers }),
      ),
    ).toBe(Code.NotFound)
    const missing = proc.start({ process: { cmd: '/no/such/binary' } }, { headers })
    expect(await codeOf(missing[Symbol.asyncIterator]().next())).toBe(Code.InvalidArgument)
    const noCmd = proc.start({ process: { cmd: '' } }, { headers })
    expect(await codeOf(noCmd[Symbol.asyncIterator]().next())).toBe(Code.InvalidArgument)
    expect(await codeOf(proc.list({}))).toBe(Code.Unauthenticated)
  })
})

describe('polling watchers', () => {
  it('collects events between polls and can be removed', async () => {
    await fs.makeDir({ path: 'polled' }, { headers })
    const { watcherId } = await fs.createWatcher(
      { path: 'polled', recursive: true, includeEntry: true },
      { headers },
    )
    await fetch(`${envd.url}/files?path=polled/a.txt`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      body: 'a',
    })
    const poll = async () => (await fs.getWatcherEvents({ watcherId }, { headers })).events
    const created = (events: Awaited<ReturnType<typeof poll>>) =>
      events.filter(
        (e) =>
          e.name === 'a.txt' &&
          e.type === EventType.CREATE &&
          e.entry?.path === '/home/user/polled/a.txt',
      )
    let collected: Awaited<ReturnType<typeof poll>> = []
    await eventually('a poll returns the upload', async () => {
      collected = [...collected, ...(await poll())]
      return created(collected).length > 0
    })
    expect(created(collected)).toHaveLength(1)
    // A poll takes what it returns: the next one does not repeat it.
    expect(created(await poll())).toEqual([])
    await fs.removeWatcher({ watcherId }, { headers })
    expect(await codeOf(fs.getWatcherEvents({ watcherId }, { headers }))).toBe(Code.NotFound)
  })

  it('refuses missing paths and files', async () => {
    expect(await codeOf(fs.createWatcher({ path: 'nope' }, { headers }))).toBe(Code.NotFound)
    expect(await codeOf(fs.stat({ path: '' }, { headers }))).toBeUndefined()
  })
})
