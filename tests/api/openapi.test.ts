// GET /openapi.json: served without a key, valid JSON, and a true map of the
// sandbox routes (the same schemas validate the requests).
import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()

const ROUTES: Array<[string, string[]]> = [
  ['/sandboxes', ['get', 'post']],
  ['/v2/sandboxes', ['get', 'post']],
  ['/sandboxes/{sandboxID}', ['get', 'delete']],
  ['/sandboxes/{sandboxID}/timeout', ['post']],
  ['/sandboxes/{sandboxID}/refreshes', ['post']],
  ['/sandboxes/{sandboxID}/connect', ['post']],
  ['/v2/sandboxes/{sandboxID}/connect', ['post']],
  ['/sandboxes/{sandboxID}/metrics', ['get']],
  ['/sandboxes/metrics', ['get']],
  ['/sandboxes/{sandboxID}/logs', ['get']],
  ['/v2/sandboxes/{sandboxID}/logs', ['get']],
  ['/templates', ['get']],
  ['/volumes', ['get', 'post']],
  ['/volumes/{volumeID}', ['get', 'delete']],
]

interface Doc {
  openapi: string
  paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>
  components?: { schemas?: Record<string, { required?: string[]; properties?: object }> }
}

describe('the OpenAPI document', () => {
  it('is served without a key as valid JSON describing every sandbox route', async () => {
    const res = await api(warren(), 'GET', '/openapi.json', { key: null })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const doc = JSON.parse(res.text) as Doc
    expect(doc.openapi).toMatch(/^3\.1\./)
    for (const [path, methods] of ROUTES) {
      expect(doc.paths, path).toHaveProperty([path])
      for (const m of methods) {
        const op = doc.paths[path]?.[m]
        expect(op, `${m} ${path}`).toBeDefined()
        // Every route documents its error answers.
        expect(Object.keys(op?.responses ?? {}), `${m} ${path}`).toEqual(
          expect.arrayContaining(['400', '401']),
        )
      }
    }
    const create = doc.components?.schemas?.NewSandbox
    expect(create?.required).toContain('templateID')
    expect(Object.keys(create?.properties ?? {})).toEqual(
      expect.arrayContaining(['templateID', 'timeout', 'metadata', 'envVars', 'lifecycle']),
    )
  })
})
