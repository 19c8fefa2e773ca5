import { createRouterTransport } from '@connectrpc/connect'
import { describe, expect, it } from 'vitest'
import { createWarrenClient } from './errors.js'
import { ProxyService } from './gen/warren/api/v1/proxy_pb.js'
import {
  currentRequestId,
  REQUEST_ID_HEADER,
  requestIdFrom,
  requestIdInterceptor,
  validRequestId,
  withRequestId,
} from './request-id.js'

describe('request ids', () => {
  it.each([
    ['abc-123', 'abc-123'],
    ['0f8a1c2e-7b6d-4c3b-9a1e-2f3d4c5b6a79', '0f8a1c2e-7b6d-4c3b-9a1e-2f3d4c5b6a79'],
    ['trace:span.1_x', 'trace:span.1_x'],
    ['', undefined],
    ['x'.repeat(129), undefined],
    ['has space', undefined],
    ['line\nbreak', undefined],
    ['{"json":1}', undefined],
    [undefined, undefined],
  ])('%j is kept as %j', (v, want) => {
    expect(validRequestId(v)).toBe(want)
  })

  it('are made when the caller sent none or an invalid one', () => {
    expect(requestIdFrom('mine')).toBe('mine')
    expect(requestIdFrom(['first', 'second'])).toBe('first')
    const made = requestIdFrom('bad id')
    expect(made).toMatch(/^[0-9a-f-]{36}$/)
    expect(requestIdFrom(undefined)).not.toBe(made)
  })

  it('travel with every RPC a Warren client makes while handling a request', async () => {
    const arrived: Array<string | null> = []
    const seen: Array<string | undefined> = []
    const transport = createRouterTransport(
      (r) =>
        r.service(ProxyService, {
          async keepAliveSandbox() {
            seen.push(currentRequestId())
            return {}
          },
        }),
      {
        router: {
          interceptors: [
            (next) => (req) => {
              arrived.push(req.header.get(REQUEST_ID_HEADER))
              return next(req)
            },
            requestIdInterceptor(),
          ],
        },
      },
    )
    const client = createWarrenClient(ProxyService, transport)
    await client.keepAliveSandbox({ sandboxId: 's' })
    await withRequestId('req-42', () => client.keepAliveSandbox({ sandboxId: 's' }))
    expect(arrived).toEqual([null, 'req-42'])
    expect(seen).toEqual([undefined, 'req-42'])
  })
})
