import { create } from '@bufbuild/protobuf'
import { ConnectWindowError, toWarrenError, WarrenError } from '@warren/shared'
import { RouteSchema, RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { describe, expect, it } from 'vitest'
import { CatalogCopy, changeToWire, routeToWire } from './catalog-copy.js'
import { Channel, type Message } from './channel.js'

/** Two channels joined as a worker and its primary are, each message cloned as IPC would. */
function pair() {
  let a: Channel | undefined
  let b: Channel | undefined
  const deliver = (to: () => Channel | undefined) => (m: Message) => {
    const copy = structuredClone(m)
    setImmediate(() => to()?.receive(copy))
    return true
  }
  a = new Channel(deliver(() => b))
  b = new Channel(deliver(() => a))
  return { worker: a, primary: b }
}

const route = (id: string, state: RouteState, envdAccessToken = '') =>
  create(RouteSchema, { sandboxId: id, state, nodeProxyUrl: 'http://127.0.0.1:9', envdAccessToken })

describe('Channel', () => {
  it('answers calls with values, and throws the error kinds of the other side', async () => {
    const { worker, primary } = pair()
    primary
      .handle('add', (x: number, y: number) => x + y)
      .handle('gone', () => {
        throw new WarrenError('not_found', 'no such sandbox')
      })
      .handle('full', async () => {
        throw new ConnectWindowError('full', 'the window is full')
      })
      .handle('boom', () => {
        throw new Error('internal detail')
      })
    expect(await worker.call('add', 2, 3)).toBe(5)
    const cases: Array<[string, (e: unknown) => void]> = [
      ['gone', (e) => expect(toWarrenError(e).code).toBe('not_found')],
      [
        'full',
        (e) => {
          expect(e).toBeInstanceOf(ConnectWindowError)
          expect((e as ConnectWindowError).reason).toBe('full')
        },
      ],
      ['boom', (e) => expect(toWarrenError(e).code).toBe('internal')],
      ['nothing', (e) => expect(String(e)).toMatch(/no such call/)],
    ]
    for (const [method, check] of cases) check(await worker.call(method).catch((e: unknown) => e))
  })

  it('handles an answer and the notes read with it in the order they were sent', async () => {
    const sent: Message[] = []
    const worker = new Channel((m) => sent.push(m) > 0)
    const seen: string[] = []
    worker.handle('change', (n: number) => seen.push(`note ${n}`))
    const answer = worker.call<string>('ask').then((a) => seen.push(a))
    const call = sent[0] as Extract<Message, { t: 'call' }>
    // One read of the pipe can bring several messages: they are fed at once.
    worker.receive({ t: 'note', method: 'change', args: [0] })
    worker.receive({ t: 'reply', id: call.id, value: 'answer' })
    worker.receive({ t: 'note', method: 'change', args: [1] })
    await answer
    await new Promise((r) => setImmediate(r))
    expect(seen).toEqual(['note 0', 'answer', 'note 1'])
  })

  it('fails the calls in flight, and later ones, once the other end is gone', async () => {
    const { worker, primary } = pair()
    primary.handle('slow', () => new Promise(() => {}))
    const pending = worker.call('slow')
    worker.close()
    await expect(pending).rejects.toMatchObject({ code: 'unavailable' })
    await expect(worker.call('slow')).rejects.toMatchObject({ code: 'unavailable' })
  })
})

describe('CatalogCopy', () => {
  it('applies the primary state and changes in order, and asks the primary what it would ask the API', async () => {
    const { worker, primary } = pair()
    const asked: string[] = []
    primary
      .handle('lookup', (id: string) => {
        asked.push(`lookup ${id}`)
        return routeToWire(route(id, RouteState.PAUSED))
      })
      .handle('confirm', (id: string) => {
        asked.push(`confirm ${id}`)
        return null
      })
      .handle('noteMiss', (id: string) => asked.push(`miss ${id}`))
    const copy = new CatalogCopy(worker)
    expect(await copy.readyWithin(10)).toBe(false)
    copy.start({
      ready: true,
      following: true,
      routes: [routeToWire(route('a', RouteState.RUNNING, 't1'))],
    })
    expect(await copy.readyWithin(10)).toBe(true)
    expect((await copy.lookup('a'))?.state).toBe(RouteState.RUNNING)
    const generation = copy.tokenGeneration

    const steps: Array<[Parameters<typeof changeToWire>[0], (c: CatalogCopy) => void]> = [
      [
        { kind: 'upsert', route: route('b', RouteState.RUNNING, 't2') },
        (c) => {
          expect(c.isLive('b')).toBe(true)
          expect(c.tokenGeneration).toBe(generation + 1)
          expect([...c.withEnvdTokens()].map((r) => r.sandboxId)).toEqual(['a', 'b'])
        },
      ],
      [
        { kind: 'upsert', route: route('a', RouteState.KILLED, 't1') },
        (c) => {
          expect(c.isLive('a')).toBe(false)
          expect(c.tokenGeneration).toBe(generation + 1)
        },
      ],
      [{ kind: 'remove', sandboxId: 'b' }, (c) => expect(c.isLive('b')).toBe(false)],
      [{ kind: 'miss', sandboxId: 'zz' }, (c) => expect(c.recentMiss('zz')).toBe(true)],
      [
        { kind: 'snapshot', routes: [route('c', RouteState.RUNNING)] },
        (c) => {
          expect(c.recentMiss('zz')).toBe(false)
          expect(c.isLive('a')).toBe(false)
          expect(c.isLive('c')).toBe(true)
        },
      ],
    ]
    for (const [change, check] of steps) {
      copy.apply(changeToWire(change))
      check(copy)
    }
    expect(asked).toEqual([])

    // The primary's stream broke: its lookup (which asks the API) answers.
    copy.apply({ kind: 'following', following: false })
    expect((await copy.lookup('c'))?.state).toBe(RouteState.PAUSED)
    expect(await copy.lookup('unknown')).toBeUndefined()
    expect(await copy.confirm('c')).toBeUndefined()
    copy.noteMiss('x')
    await new Promise((r) => setImmediate(r))
    expect(asked).toEqual(['lookup c', 'confirm c', 'miss x'])
  })
})
