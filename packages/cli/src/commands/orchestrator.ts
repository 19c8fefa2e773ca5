import { createNode, listenNodeProxy, serveOrchestratorRpc } from '@warren/orchestrator'
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
      const nodeProxy = await listenNodeProxy(node, cfg.listenHost, cfg.nodeProxyPort)
      const { server, url } = await serveOrchestratorRpc(node, {
        host: cfg.listenHost,
        port: cfg.rpcPort,
        proxyUrl: nodeProxy.url,
      })
      log.info({ url, nodeProxy: nodeProxy.url, node: cfg.nodeId }, 'orchestrator listening')
      const shutdown = async () => {
        server.close()
        nodeProxy.server.close()
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
