import { createReadStream, statSync } from 'node:fs'
import { Readable } from 'node:stream'
import { createRoute, z } from '@hono/zod-openapi'
import { WarrenError } from '@warren/shared'
import type { Context } from 'hono'
import { getTemplate } from '../../store/templates.js'
import { FILES_HASH, MAX_UPLOAD_BYTES } from '../../templates/files.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, noQuery } from '../params.js'
import { templateIdParams } from './params.js'

const route = createRoute({
  method: 'get',
  path: '/templates/{templateID}/files/{hash}',
  request: {
    query: noQuery,
    params: templateIdParams.extend({
      hash: z
        .string()
        .regex(FILES_HASH, 'a files hash is 64 lowercase hex digits')
        .openapi({ param: { name: 'hash', in: 'path' } }),
    }),
  },
  responses: {
    201: {
      description: 'Whether the files are present, and where to upload them',
      content: {
        'application/json': {
          schema: z
            .object({ present: z.boolean(), url: z.string().optional() })
            .openapi('TemplateBuildFileUpload'),
        },
      },
    },
    ...errorResponses,
  },
})

const linkQuery = z.strictObject({
  op: z.enum(['put', 'get']),
  exp: z.string().regex(/^\d+$/),
  sig: z.string().min(1).max(128),
})

/**
 * E2B's upload link for a COPY step's files (by hash, per team), and the
 * link itself: served by Warren, authenticated by its signature, expiring.
 * The upload must carry an exact Content-Length (no chunked bodies).
 */
export function registerFiles(app: App, deps: RouteDeps): void {
  const { files } = deps.templates
  app.openapi(route, async (c) => {
    const { templateID, hash } = c.req.valid('param')
    const team = c.get('team')
    await getTemplate(deps.db, team.id, templateID)
    const present = await files.present(deps.db, team.id, hash)
    const url = files.link(new URL(c.req.url).origin, 'put', team.id, hash, deps.clock.now())
    return c.json({ present, url }, 201)
  })

  const link = (c: Context, op: 'put' | 'get') => {
    const teamId = c.req.param('teamId') ?? ''
    const hash = c.req.param('hash') ?? ''
    const q = linkQuery.safeParse(c.req.query())
    if (!FILES_HASH.test(hash) || !q.success)
      throw new WarrenError('invalid_argument', 'malformed file link')
    files.verify(op, teamId, hash, q.data, deps.clock.now())
    return { teamId, hash }
  }

  app.put('/template-files/:teamId/:hash', async (c) => {
    const { teamId, hash } = link(c, 'put')
    if (c.req.header('transfer-encoding'))
      return c.json(
        { code: 411, message: 'send the archive with a Content-Length, not chunked' },
        411,
      )
    const length = Number(c.req.header('content-length'))
    if (!Number.isInteger(length) || length < 0)
      return c.json({ code: 411, message: 'Content-Length is required' }, 411)
    if (length > MAX_UPLOAD_BYTES)
      return c.json({ code: 413, message: `archive over ${MAX_UPLOAD_BYTES} bytes` }, 413)
    const body = c.req.raw.body
    if (!body) throw new WarrenError('invalid_argument', 'empty upload')
    await files.store(deps.db, teamId, hash, body, length, deps.clock.now())
    return c.body(null, 200)
  })

  app.get('/template-files/:teamId/:hash', (c) => {
    const { teamId, hash } = link(c, 'get')
    const path = files.path(teamId, hash)
    let size: number
    try {
      size = statSync(path).size
    } catch {
      throw new WarrenError('not_found', 'no such files archive')
    }
    return c.body(Readable.toWeb(createReadStream(path)) as ReadableStream, 200, {
      'content-type': 'application/x-tar',
      'content-length': String(size),
    })
  })
}
