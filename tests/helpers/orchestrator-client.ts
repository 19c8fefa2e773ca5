// The orchestrator of a `warren up` fixture, asked directly over its RPC:
// what really runs on the node, whatever the API believes.
import { createConnectTransport } from '@connectrpc/connect-node'
import { createWarrenClient } from '@warren/shared'
import { OrchestratorService } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import type { WarrenFixture } from './warren-fixture.js'

export async function nodeSandboxIds(w: WarrenFixture): Promise<string[]> {
  const client = createWarrenClient(
    OrchestratorService,
    createConnectTransport({ baseUrl: `http://127.0.0.1:${w.ports.rpc}`, httpVersion: '1.1' }),
  )
  const { sandboxes } = await client.list({})
  return sandboxes.map((s) => s.sandboxId).sort()
}
