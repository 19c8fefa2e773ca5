import { createNode, serveNode } from '@warren/orchestrator'
import { createLogger, loadOrchestratorConfig } from '@warren/shared'
import type { Command } from 'commander'

export function registerOrchestrator(program: Command): void {
  program
    .command('orchestrator')
    .description('run the orchestrator of this node (RPC on :5008, node proxy on :5007)')
    .option('--port <port>', 'RPC port')
    .option('--host <host>', 'listen address')
    .action(async (opts: { port?: string; host?: string }) => {
      const log = createLogger('orchestrator')
      const cfg = loadOrchestratorConfig({
        ...(opts.port ? { rpcPort: Number(opts.port) } : {}),
        ...(opts.host ? { listenHost: opts.host } : {}),
      })
      const node = createNode(cfg, { log })
      await node.start()
      const served = await serveNode(node, log).catch(async (err: unknown) => {
        await node.stop()
        throw err
      })
      log.info(
        {
          url: served.rpcUrl,
          nodeProxy: served.proxyUrl,
          node: cfg.nodeId,
          api: cfg.apiInternalUrl ?? '(not registering: polled)',
        },
        'orchestrator listening',
      )
      const shutdown = async () => {
        await served.stop()
        try {
          await node.stop()
          process.exit(0)
        } catch (err) {
          log.error({ err }, 'stop failed')
          process.exit(1)
        }
      }
      process.once('SIGTERM', shutdown)
      process.once('SIGINT', shutdown)
    })
}
