import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import { ACCESS_TOKEN_HEADER, hasValidToken } from './auth.js'
import type { EnvdConfig } from './config.js'
import { authInterceptor, internalErrorInterceptor } from './connect-interceptors.js'
import { handleEnvs } from './http/envs.js'
import { handleDownload } from './http/files-download.js'
import { handleUpload } from './http/files-upload.js'
import { createMetricsHandler } from './http/metrics.js'
import { sendError } from './http/respond.js'
import { createTunnels } from './http/tunnel.js'
import { log } from './log.js'
import { registerFilesystemService } from './services/filesystem/index.js'
import { WatcherStore } from './services/filesystem/watchers.js'
import { registerProcessService } from './services/process/index.js'
import { ProcessRegistry } from './services/process/registry.js'
import type { EnvdState } from './state.js'

export interface App {
  handleRequest(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void>
  close(): void
}

/** Everything beyond /health: loaded after envd is already listening. */
export function createApp(config: EnvdConfig, state: EnvdState): App {
  const registry = new ProcessRegistry()
  const watchers = new WatcherStore()
  const shutdown = new AbortController()
  const tunnels = createTunnels({
    state,
    pingIntervalMs: config.tunnelPingIntervalMs,
    pongTimeoutMs: config.tunnelPongTimeoutMs,
  })
  const metrics = createMetricsHandler()
  const connect = connectNodeAdapter({
    routes: (router) => {
      registerProcessService(router, { state, registry })
      registerFilesystemService(router, { state, watchers })
    },
    interceptors: [internalErrorInterceptor, authInterceptor(state)],
    shutdownSignal: shutdown.signal,
    fallback: (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ code: 404, message: 'no such method' }))
    },
  })

  const authorized = (req: IncomingMessage) =>
    hasValidToken(state.accessToken, req.headers[ACCESS_TOKEN_HEADER])

  return {
    async handleRequest(req, res, url) {
      const route = `${req.method} ${url.pathname}`
      switch (route) {
        case 'GET /files':
          return handleDownload(req, res, url, state)
        case 'POST /files':
          return handleUpload(req, res, url, state)
      }
      // Connect routes answer missing tokens with Connect errors (interceptor).
      if (url.pathname.startsWith('/process.') || url.pathname.startsWith('/filesystem.')) {
        return connect(req, res)
      }
      if (!authorized(req)) {
        return sendError(res, 401, 'unauthorized access, please provide a valid access token')
      }
      switch (route) {
        case 'GET /envs':
          return handleEnvs(res, state)
        case 'GET /metrics':
          return metrics(res)
      }
      return sendError(res, 404, `no route for ${route}`)
    },
    async handleUpgrade(req, socket, head, url) {
      if (url.pathname !== '/tunnel') {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
        return
      }
      await tunnels.handle(req, socket, head, url)
    },
    close() {
      shutdown.abort()
      tunnels.closeAll()
      watchers.closeAll()
      registry.killAll()
      log.info('stopped', { processes: registry.all().length })
    },
  }
}
