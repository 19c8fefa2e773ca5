// The sandboxes of an SDK test file: every one a test makes through this
// fixture is recorded (sandbox-ledger.ts), killed after the test if it is
// still there, and named when the test fails.
import { Sandbox, type SandboxOpts } from 'e2b'
import type { ApiTarget } from './api-client.js'
import { type CreatedSandbox, createRaw } from './lifecycle.js'
import { sandboxLedger } from './sandbox-ledger.js'
import type { WarrenFixture } from './warren-fixture.js'

export interface Sandboxes {
  /** `Sandbox.create` with the fixture's connection (`opts` may override it), recorded. */
  create(opts?: SandboxOpts): Promise<Sandbox>
  /** `createRaw`: POST /v2/sandboxes with a body the SDK cannot express, recorded. */
  createRaw(body: Record<string, unknown>): Promise<CreatedSandbox>
  /** Records a sandbox made another way (the CLI, POST /sandboxes, …); returns its id. */
  add(id: string): string
}

/** What the fixture needs of a Warren: its SDK connection, its API, a name for messages. */
export type SandboxTarget = Pick<WarrenFixture, 'sdk' | 'prefix'> & ApiTarget

/**
 * The sandboxes of an SDK test file against `warren`: call after `useWarren()`
 * (after whatever tears Warren down) so that they are killed before that.
 */
export function useSandboxes(warren: () => SandboxTarget): Sandboxes {
  const record = sandboxLedger(
    () => warren().prefix,
    (id) => Sandbox.kill(id, warren().sdk),
  )
  return {
    async create(opts = {}) {
      const sbx = await Sandbox.create({ ...warren().sdk, ...opts })
      record(sbx.sandboxId)
      return sbx
    },
    async createRaw(body) {
      const created = await createRaw(warren(), body)
      record(created.sandboxID)
      return created
    },
    add(id) {
      record(id)
      return id
    },
  }
}
