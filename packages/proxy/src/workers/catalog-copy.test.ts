import { create } from '@bufbuild/protobuf'
import { RouteSchema, RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { channelPair as pair } from '@warren/shared/workers/channel-pair'
import { describe, expect, it } from 'vitest'
import { CatalogCopy, changeToWire, routeToWire } from './catalog-copy.js'

const route = (id: string, state: RouteState, envdAccessToken = '') =>
  create(RouteSchema, { sandboxId: id, state, nodeProxyUrl: 'http://127.0.0.1:9', envdAccessToken })

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
