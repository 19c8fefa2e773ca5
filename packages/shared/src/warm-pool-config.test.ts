import { describe, expect, it } from 'vitest'
import { loadOrchestratorConfig } from './config.js'
import { WarrenError } from './errors.js'

// WARREN_WARM_POOL: `templateId=count,...`, validated at start-up with the
// variable's name in the message.

const load = (value: string) => loadOrchestratorConfig({}, { WARREN_WARM_POOL: value }).warmPool

describe('WARREN_WARM_POOL', () => {
  it.each([
    ['base=2', { base: 2 }],
    ['base=2, my-tpl_1=0 ,other=64', { base: 2, 'my-tpl_1': 0, other: 64 }],
    ['base=1,', { base: 1 }],
  ])('reads %s', (value, want) => {
    expect(load(value)).toEqual(want)
  })

  it('is empty by default', () => {
    expect(loadOrchestratorConfig({}, {}).warmPool).toEqual({})
  })

  it.each(['base', 'base=', 'base=two', 'base=65', 'Base=1', '../x=1', 'base=1;rm'])(
    'refuses %s, naming the variable',
    (value) => {
      let err: unknown
      try {
        load(value)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(WarrenError)
      expect((err as Error).message).toMatch(/WARREN_WARM_POOL/)
    },
  )
})
