import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { keepConnectionsLong } from '../proxy/dial.js'

export interface InternalTls {
  cert: string
  key: string
}

/** The listener's certificate and key from their files, when configured. */
export function readInternalTls(cfg: {
  internalTlsCert?: string | undefined
  internalTlsKey?: string | undefined
}): InternalTls | undefined {
  if (!cfg.internalTlsCert || !cfg.internalTlsKey) return undefined
  return {
    cert: readFileSync(cfg.internalTlsCert, 'utf8'),
    key: readFileSync(cfg.internalTlsKey, 'utf8'),
  }
}

/** An internal port's server: HTTPS with its certificate, else plain HTTP (HTTP/1.1 both). */
export function createInternalServer(handler: RequestListener, tls?: InternalTls): Server {
  const server = tls
    ? (createHttpsServer(
        { cert: tls.cert, key: tls.key, ALPNProtocols: ['http/1.1'] },
        handler,
      ) as unknown as Server)
    : createHttpServer(handler)
  keepConnectionsLong(server)
  return server
}

/** `http://` or `https://` for a listener's base URL. */
export function schemeOf(tls: InternalTls | undefined): 'http' | 'https' {
  return tls ? 'https' : 'http'
}
