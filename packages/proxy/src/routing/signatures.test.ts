import { create } from '@bufbuild/protobuf'
import { fileSignature, type SignedFilesRequest } from '@warren/shared'
import { type Route, RouteSchema, RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { describe, expect, it } from 'vitest'
import type { RouteCatalog } from '../catalog/route-catalog.js'
import { SignatureRoutes } from './signatures.js'

/** A catalog of `n` secure sandboxes (token `t<i>`, id `s<i>`); more can be added. */
function catalog(n: number) {
  const routes: Route[] = []
  const fake = {
    tokenGeneration: 0,
    *withEnvdTokens() {
      yield* routes
    },
    add(i: number) {
      routes.push(
        create(RouteSchema, {
          sandboxId: `s${i}`,
          state: RouteState.RUNNING,
          envdAccessToken: `t${i}`,
        }),
      )
      fake.tokenGeneration++
    },
  }
  for (let i = 0; i < n; i++) fake.add(i)
  return fake
}

function signedFor(token: string, expiration?: number): SignedFilesRequest {
  const base = { path: '/home/user/a.txt', operation: 'read', user: '' } as const
  return {
    ...base,
    signature: fileSignature({ ...base, token, expiration }),
    expiration: expiration === undefined ? undefined : String(expiration),
  }
}

describe('SignatureRoutes', () => {
  it('finds the sandbox whose token made the signature, searching once per signature', () => {
    const cat = catalog(100)
    const routes = new SignatureRoutes(cat as unknown as RouteCatalog)
    for (let i = 0; i < 5; i++) expect(routes.find(signedFor('t42'))).toBe('s42')
    expect(routes.find(signedFor('t7'))).toBe('s7')
    expect(routes.searches).toBe(2)
  })

  it('a signature that matches nothing is searched again only when a new token arrives', () => {
    const cat = catalog(10)
    const routes = new SignatureRoutes(cat as unknown as RouteCatalog)
    const forLater = signedFor('t10')
    for (let i = 0; i < 5; i++) expect(routes.find(forLater)).toBeUndefined()
    expect(routes.searches).toBe(1)
    // The sandbox appears (a create the catalog had not seen yet): found now.
    cat.add(10)
    expect(routes.find(forLater)).toBe('s10')
    expect(routes.find(forLater)).toBe('s10')
    expect(routes.searches).toBe(2)
  })

  it('random signatures cost one search each, however often they repeat', () => {
    const cat = catalog(10)
    const routes = new SignatureRoutes(cat as unknown as RouteCatalog)
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < 50; i++) expect(routes.find(signedFor(`nope-${i}`))).toBeUndefined()
    expect(routes.searches).toBe(50)
  })

  it('a signature with an expiration is forgotten once it has passed', () => {
    let now = 1_000_000_000_000
    const cat = catalog(3)
    const routes = new SignatureRoutes(cat as unknown as RouteCatalog, () => now)
    const req = signedFor('t1', now / 1000 + 60)
    expect(routes.find(req)).toBe('s1')
    expect(routes.find(req)).toBe('s1')
    expect(routes.searches).toBe(1)
    now += 61_000
    // Past its expiry the entry is gone: the next lookup searches again.
    expect(routes.find(req)).toBe('s1')
    expect(routes.searches).toBe(2)
  })
})
