import { describe, expect, it } from 'vitest'
import { toWarrenError, WarrenError } from '../errors.js'
import { ConnectWindowError } from '../proxy/connect-window.js'
import { Channel, type Message } from './channel.js'
import { channelPair as pair } from './channel-pair.js'

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
