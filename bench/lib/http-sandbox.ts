import { clusterTransport, createWarrenClient } from '@warren/shared'
import { OrchestratorService } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import { Sandbox } from 'e2b'
import { fixtureSecret } from '../../tests/helpers/orchestrator-client.js'
import type { WarrenFixture } from '../../tests/helpers/warren-fixture.js'

/** The port of the proxy benchmarks' server in the sandbox. */
export const SERVER_PORT = 8000

/** A minimal HTTP server for the proxy runs, on the Node binary every sandbox has. */
const SERVER = `require('http').createServer((q,s)=>{s.writeHead(200,{'content-type':'text/plain'});s.end('ok')}).listen(${SERVER_PORT})`

/**
 * A sandbox running the proxy benchmarks' tiny HTTP server, once it answers:
 * the sandbox, its address on the node (where a direct caller or nginx
 * reaches the server) and the server's host name at the edge.
 */
export async function httpSandbox(
  warren: WarrenFixture,
): Promise<{ sbx: Sandbox; address: string; host: string }> {
  const sbx = await Sandbox.create({ ...warren.sdk, timeoutMs: 600_000 })
  await sbx.commands.run(`nohup /opt/warren/bin/node -e "${SERVER}" >/dev/null 2>&1 &`)
  const rpc = createWarrenClient(
    OrchestratorService,
    clusterTransport(`http://127.0.0.1:${warren.ports.rpc}`, {
      secret: fixtureSecret(warren),
    }),
  )
  const address = (await rpc.get({ sandboxId: sbx.sandboxId })).sandbox!.address
  for (let i = 0; i < 50; i++) {
    const ok = await fetch(`http://${address}:${SERVER_PORT}/`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    await new Promise((r) => setTimeout(r, 100))
  }
  return { sbx, address, host: sbx.getHost(SERVER_PORT) }
}
