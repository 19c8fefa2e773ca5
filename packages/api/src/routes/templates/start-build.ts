import { createRoute, z } from '@hono/zod-openapi'
import { WarrenError } from '@warren/shared'
import type { Db } from '../../store/db.js'
import { getBuild, transitionBuild } from '../../store/template-builds.js'
import { findTemplate } from '../../store/templates.js'
import { FILES_HASH } from '../../templates/files.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, noQuery } from '../params.js'
import { BUILT_IN, buildParams } from './params.js'

const step = z.strictObject({
  type: z.enum(['COPY', 'RUN', 'ENV', 'WORKDIR', 'USER']),
  args: z.array(z.string().max(65_536)).max(1024).default([]),
  force: z.boolean().optional(),
  filesHash: z.string().regex(FILES_HASH, 'filesHash is 64 lowercase hex digits').optional(),
  // Options of the SDK's own upload that it sends along with the step; they
  // shaped the archive it uploaded and mean nothing more to the build.
  forceUpload: z.boolean().nullable().optional(),
  resolveSymlinks: z.boolean().nullable().optional(),
  gzip: z.boolean().nullable().optional(),
})

const registry = z.union([
  z.strictObject({ type: z.literal('registry'), username: z.string(), password: z.string() }),
  z.object({ type: z.enum(['aws', 'gcp']) }).passthrough(),
])

const body = z
  .strictObject({
    fromImage: z.string().min(1).max(1024).optional(),
    fromTemplate: z.string().min(1).max(256).optional(),
    fromImageRegistry: registry.optional(),
    steps: z.array(step).max(1000).default([]),
    startCmd: z.string().max(65_536).optional(),
    readyCmd: z.string().max(65_536).optional(),
    force: z.boolean().optional(),
  })
  .openapi('TemplateBuildStartV2')

const route = createRoute({
  method: 'post',
  path: '/v2/templates/{templateID}/builds/{buildID}',
  request: { query: noQuery, params: buildParams, body: jsonBody(body) },
  responses: { 202: { description: 'Build started' }, ...errorResponses },
})

/** The image E2B's SDK builds from when none is named: Warren's own base stands in for it. */
const E2B_BASE_IMAGE = 'e2bdev/base'

/** The node template a build stands on: Warren's base, or one of the team's ready templates. */
async function baseTemplate(db: Db, teamId: string, ref: string): Promise<string> {
  if (ref === BUILT_IN) return BUILT_IN
  const found = await findTemplate(db, teamId, ref)
  if (!found?.template.buildId)
    throw new WarrenError(
      'invalid_argument',
      `fromTemplate: template '${ref}' not found or not built`,
    )
  return found.template.id
}

/**
 * E2B's v2 build start: the steps of a requested build, checked (its files
 * uploaded, its base known to the team), then `pending → waiting` in one
 * compare-and-set, so a build starts once; the runner takes it from there.
 */
export function registerStartBuild(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    const { templateID, buildID } = c.req.valid('param')
    const b = c.req.valid('json')
    const team = c.get('team')
    const build = await getBuild(deps.db, team.id, templateID, buildID)
    if (build.status !== 'pending')
      throw new WarrenError('conflict', `build '${buildID}' was already started`)
    let fromTemplate = b.fromTemplate
    let fromImage = b.fromImage
    if (fromImage === E2B_BASE_IMAGE && !fromTemplate && !b.fromImageRegistry) {
      fromImage = undefined
      fromTemplate = BUILT_IN
    }
    if (!!fromTemplate === !!fromImage)
      throw new WarrenError('invalid_argument', 'give exactly one of fromTemplate and fromImage')
    const auth = b.fromImageRegistry
    if (auth && (auth.type !== 'registry' || !fromImage))
      throw new WarrenError(
        'invalid_argument',
        'fromImageRegistry: only type registry (username and password) with fromImage is supported',
      )
    const hashes = new Set<string>()
    for (const [i, s] of b.steps.entries()) {
      if (s.type !== 'COPY') continue
      if (!s.filesHash)
        throw new WarrenError('invalid_argument', `steps.${i}: COPY needs filesHash`)
      if (!(await deps.templates.files.present(deps.db, team.id, s.filesHash)))
        throw new WarrenError('invalid_argument', `steps.${i}: its files were not uploaded`)
      hashes.add(s.filesHash)
    }
    const self = deps.templates.selfUrl.current
    if (hashes.size && !self) throw new WarrenError('unavailable', 'the API is not listening yet')
    const now = deps.clock.now()
    const filesUrls = Object.fromEntries(
      [...hashes].map((h) => [h, deps.templates.files.link(self ?? '', 'get', team.id, h, now)]),
    )
    const base = fromTemplate ? await baseTemplate(deps.db, team.id, fromTemplate) : undefined
    // This replica streams the build: if it dies, another one fails the build.
    const waiting = await transitionBuild(
      deps.db,
      buildID,
      ['pending'],
      { status: 'waiting', owner: deps.engine.replicaId },
      now,
    )
    if (!waiting) throw new WarrenError('conflict', `build '${buildID}' was already started`)
    deps.templates.run(waiting, {
      templateId: templateID,
      buildId: buildID,
      fromTemplate: base ?? '',
      fromImage: fromImage ?? '',
      ...(auth?.type === 'registry'
        ? {
            fromImageRegistry: { username: String(auth.username), password: String(auth.password) },
          }
        : {}),
      steps: b.steps.map((s) => ({
        type: s.type,
        args: s.args,
        force: s.force ?? false,
        ...(s.filesHash ? { filesHash: s.filesHash } : {}),
      })),
      ...(b.startCmd ? { startCmd: b.startCmd } : {}),
      ...(b.readyCmd ? { readyCmd: b.readyCmd } : {}),
      force: b.force ?? false,
      cpuCount: build.cpuCount,
      memoryMb: build.memoryMb,
      diskSizeMb: build.diskSizeMb,
      filesUrls,
    })
    // openapi-fetch (the SDK's client) reads an empty body only when it says so.
    return c.body(null, 202, { 'content-length': '0' })
  })
}
