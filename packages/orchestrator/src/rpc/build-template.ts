import { create, type MessageInitShape } from '@bufbuild/protobuf'
import { timestampNow } from '@bufbuild/protobuf/wkt'
import { WarrenError } from '@warren/shared'
import {
  type BuildTemplateEvent,
  BuildTemplateEventSchema,
  type BuildTemplateRequest,
} from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { SandboxNode } from '../node.js'
import { asBuildFailure, type TemplateBuildSpec } from '../templates/run-build.js'
import { toTemplateMessage } from './convert.js'

/** The wire request as the node's build spec (checked again by the node). */
export function buildSpecOf(req: BuildTemplateRequest): TemplateBuildSpec {
  if (!!req.fromTemplate === !!req.fromImage)
    throw new WarrenError(
      'invalid_argument',
      'a build needs exactly one of fromTemplate and fromImage',
    )
  const auth = req.fromImageRegistry
  return {
    templateId: req.templateId,
    buildId: req.buildId,
    from: req.fromTemplate
      ? { template: req.fromTemplate }
      : {
          image: req.fromImage,
          ...(auth ? { auth: { username: auth.username, password: auth.password } } : {}),
        },
    steps: req.steps.map((s) => ({
      type: s.type,
      args: s.args,
      force: s.force,
      ...(s.filesHash !== undefined ? { filesHash: s.filesHash } : {}),
    })),
    startCmd: req.startCmd,
    readyCmd: req.readyCmd,
    force: req.force,
    cpuCount: req.cpuCount,
    memoryMb: req.memoryMb,
    diskSizeMb: req.diskSizeMb,
    filesUrls: req.filesUrls,
  }
}

/**
 * Runs a build and yields its events as they happen: started, log lines,
 * then done or failed. The caller going away aborts the build.
 */
export async function* buildTemplateEvents(
  node: SandboxNode,
  req: BuildTemplateRequest,
  signal: AbortSignal,
): AsyncGenerator<BuildTemplateEvent> {
  const spec = buildSpecOf(req)
  const queue: BuildTemplateEvent[] = []
  let wake: (() => void) | undefined
  const push = (event: MessageInitShape<typeof BuildTemplateEventSchema>['event']) => {
    queue.push(create(BuildTemplateEventSchema, { event }))
    wake?.()
  }
  let finished = false
  const build = node
    .buildTemplate(
      spec,
      () => push({ case: 'started', value: {} }),
      (level, message, step) =>
        push({ case: 'log', value: { timestamp: timestampNow(), level, message, step } }),
      signal,
    )
    .then(
      (r) =>
        push({
          case: 'done',
          value: {
            template: toTemplateMessage(r.metadata, node.envdVersion()),
            cachedSteps: r.cached,
            builtSteps: r.built,
          },
        }),
      (err) => {
        const f = asBuildFailure(err)
        node.log.warn({ err, templateId: spec.templateId, buildId: spec.buildId }, 'build failed')
        push({ case: 'failed', value: { message: f.message, step: f.step } })
      },
    )
    .finally(() => {
      finished = true
      wake?.()
    })
  while (true) {
    const next = queue.shift()
    if (next) {
      yield next
      continue
    }
    if (finished) break
    await new Promise<void>((resolve) => {
      wake = resolve
    })
    wake = undefined
  }
  await build
}
