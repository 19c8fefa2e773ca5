import type { MessageInitShape } from '@bufbuild/protobuf'
import { timestampMs } from '@bufbuild/protobuf/wkt'
import type { Logger } from '@warren/shared'
import type {
  BuildTemplateRequest,
  BuildTemplateRequestSchema,
} from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { Clock } from '../lifecycle/clock.js'
import type { Placement } from '../placement/nodes.js'
import type { Db } from '../store/db.js'
import {
  appendLogs,
  type BuildRow,
  completeBuild,
  type LogEntryRow,
  transitionBuild,
} from '../store/template-builds.js'

export type BuildRequest = Omit<MessageInitShape<typeof BuildTemplateRequestSchema>, '$typeName'>

export interface BuildRunnerDeps {
  db: Db
  placement: Placement
  log: Logger
  clock: Clock
}

/**
 * Drives one build on a node and keeps its state in the store: the node
 * with the most free memory (that fits the build) takes it; `waiting`
 * becomes `building` when the node gives it a slot; log lines are stored
 * as they arrive (their index is what `logsOffset` counts); the end is one
 * compare-and-set to `ready` (the template's current build, its tags) or
 * `error` with the failed step. A stream that breaks ends the build too.
 * The runner owns the build from `waiting` on: no one else writes its logs.
 */
export async function runBuild(
  deps: BuildRunnerDeps,
  build: BuildRow,
  req: BuildRequest,
  signal?: AbortSignal,
): Promise<void> {
  const { db, clock } = deps
  let seq = 0
  const fail = async (message: string, step: string | null) => {
    await appendLogs(db, build.id, [
      { seq: seq++, at: clock.now(), level: 'error', message, step },
    ]).catch(() => {})
    await transitionBuild(
      db,
      build.id,
      ['waiting', 'building'],
      { status: 'error', reason: { message, step }, finishedAt: clock.now() },
      clock.now(),
    )
  }
  // Builds run in the API's own cluster (docs/architecture.md, known gaps).
  const node = deps.placement.candidates(build.memoryMb, undefined, { cluster: null })[0]
  if (!node) return fail('no node has room for this build', 'base')
  try {
    await transitionBuild(db, build.id, ['waiting'], { nodeId: node.nodeId }, clock.now())
    let pending: LogEntryRow[] = []
    let flushing = Promise.resolve()
    const flush = () => {
      const batch = pending
      pending = []
      flushing = flushing.then(() => appendLogs(db, build.id, batch))
      return flushing
    }
    for await (const ev of node.client.buildTemplate(
      req as BuildTemplateRequest,
      signal ? { signal } : {},
    )) {
      const e = ev.event
      if (e.case === 'started') {
        await transitionBuild(db, build.id, ['waiting'], { status: 'building' }, clock.now())
      } else if (e.case === 'log') {
        pending.push({
          seq: seq++,
          at: e.value.timestamp ? timestampMs(e.value.timestamp) : clock.now(),
          level: e.value.level,
          message: e.value.message,
          step: e.value.step || null,
        })
      } else if (e.case === 'done') {
        await flush()
        await completeBuild(db, build, e.value.template?.envdVersion ?? '', clock.now())
        return
      } else if (e.case === 'failed') {
        await flush()
        return fail(e.value.message, e.value.step || null)
      }
      // Lines reach pollers as they arrive, stored in order.
      if (pending.length) void flush()
    }
    await flush()
    await fail('the node ended the build without a result', null)
  } catch (err) {
    deps.log.warn({ err, buildId: build.id }, 'template build stream failed')
    await fail(`the build stopped: ${(err as Error).message}`, null)
  }
}
