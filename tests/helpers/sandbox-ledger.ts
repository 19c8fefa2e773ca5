// Which sandboxes each test made: the record behind `useSandboxes` (SDK
// suites) and `useNodeFixture` (node suites). What a test leaves behind is
// killed after that test, what a beforeAll made after the file, and a failing
// test names the sandboxes it made so that their logs and host objects can be
// found.
import { afterAll, afterEach, beforeEach, type TestContext } from 'vitest'

type Test = TestContext['task']

interface Made {
  id: string
  /** Tests that were running when it was made and have not finished yet. */
  waitingOn: number
}

/**
 * Registers the hooks that keep the record and returns the function that
 * records one sandbox id. A sandbox made while tests run belongs to those
 * tests: it is killed (with `kill`, whose failure is ignored: the sandbox may
 * be gone already) once the last of them has finished. Usually that is one
 * test; in a `concurrent` describe it may be several, and none of them loses
 * a sandbox while it still runs. A sandbox made outside any test (beforeAll)
 * is killed after all the file's tests. `label` prefixes the failure line.
 */
export function sandboxLedger(
  label: () => string,
  kill: (id: string) => Promise<unknown>,
): (id: string) => void {
  const running = new Map<Test, Made[]>()
  const beforeTests: string[] = []

  beforeEach((ctx) => {
    running.set(ctx.task, [])
  })
  afterEach(async (ctx) => {
    const mine = running.get(ctx.task) ?? []
    running.delete(ctx.task)
    if (ctx.task.result?.state === 'fail') {
      let tag = 'sandboxes'
      try {
        tag = label()
      } catch {
        // the fixture behind the label never started
      }
      const ids = mine.map((m) => m.id).join(' ') || '(none)'
      const shared = beforeTests.length ? `; made before the tests: ${beforeTests.join(' ')}` : ''
      // In a concurrent describe this includes what the tests beside it made.
      console.error(
        `[${tag}] test '${ctx.task.name}' failed; sandboxes made while it ran: ${ids}${shared}`,
      )
    }
    const done = mine.filter((m) => --m.waitingOn === 0)
    await Promise.all(done.map((m) => kill(m.id).catch(() => {})))
  })
  afterAll(async () => {
    await Promise.all(beforeTests.splice(0).map((id) => kill(id).catch(() => {})))
  })

  return (id) => {
    if (running.size === 0) {
      beforeTests.push(id)
      return
    }
    const made: Made = { id, waitingOn: running.size }
    for (const list of running.values()) list.push(made)
  }
}
