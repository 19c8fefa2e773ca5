// The orchestrator of a `warren up` fixture, asked directly over its RPC:
// what really runs on the node, whatever the API believes.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { clusterTransport, createWarrenClient } from '@warren/shared'
import { OrchestratorService } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { WarrenFixture } from './warren-fixture.js'

export async function nodeSandboxIds(w: WarrenFixture): Promise<string[]> {
  const client = createWarrenClient(
    OrchestratorService,
    clusterTransport(`http://127.0.0.1:${w.ports.rpc}`, { secret: fixtureSecret(w) }),
  )
  const { sandboxes } = await client.list({})
  return sandboxes.map((s) => s.sandboxId).sort()
}

/** The cluster secret `warren up` made for itself in the fixture's data directory. */
export function fixtureSecret(w: { dataDir: string }): string {
  return readFileSync(join(w.dataDir, 'cluster', 'secret'), 'utf8').trim()
}
