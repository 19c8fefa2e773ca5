import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { App } from './app.js'
import type { EnvdConfig } from './config.js'
import { handleHealth } from './http/health.js'
import { handleInit } from './http/init.js'
import { sendError } from './http/respond.js'
import { log } from './log.js'
import type { EnvdState } from './state.js'

export interface Envd {
  server: Server
  /** Resolves once the full app (RPC services, routes) has loaded. */
  ready: Promise<App>
  close(): Promise<void>
}

function requestUrl(req: IncomingMessage): URL {
  return new URL(req.url ?? '/', 'http://envd')
}

/**
 * The HTTP/1.1 server. /health and /init are answered by this module — both
 * are on the path of every sandbox create, right after envd starts — and the
 * rest of envd is imported after the server listens; requests for it that
 * arrive earlier wait for it.
 */
export function createEnvd(config: EnvdConfig, state: EnvdState): Envd {
  let app: App | undefined
  const ready = import('./app.js').then((m) => {
    app = m.createApp(config, state)
    return app
  })
  ready.catch((err) => log.error('failed to load envd', { err }))

  const fail = (res: ServerResponse, err: unknown) => {
    log.error('request failed', { err })
    sendError(res, 500, 'internal error')
  }

  const server = createServer({ requestTimeout: 0, keepAliveTimeout: 65_000 }, (req, res) => {
    const url = requestUrl(req)
    if (url.pathname === '/health' && req.method === 'GET') return handleHealth(res)
    if (url.pathname === '/init' && req.method === 'POST') {
      return void handleInit(req, res, state).catch((err) => fail(res, err))
    }
    const handle = (a: App) => a.handleRequest(req, res, url).catch((err) => fail(res, err))
    if (app) void handle(app)
    else ready.then(handle, (err) => fail(res, err))
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = requestUrl(req)
    ready
      .then((a) => a.handleUpgrade(req, socket, head, url))
      .catch((err) => {
        log.error('upgrade failed', { err })
        socket.destroy()
      })
  })
  server.on('clientError', (_err, socket) => socket.destroy())

  return {
    server,
    ready,
    close: () =>
      new Promise((resolve) => {
        app?.close()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
