import { once } from 'node:events'
import type { AddressInfo, Server } from 'node:net'

/**
 * `http://host:port`, with an IPv6 host bracketed (`http://[::1]:3000`):
 * unbracketed, the URL does not parse.
 */
export function httpUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
}

/**
 * Starts `server` (node:net or node:http) listening on host:port (port 0: any
 * free port) and resolves with its URL once it listens, the port being the
 * one actually bound; rejects with the server's 'error' (EADDRINUSE, …) instead.
 */
export async function listen(server: Server, host: string, port: number): Promise<string> {
  // once() rejects on 'error' while waiting and removes both listeners after.
  const listening = once(server, 'listening')
  server.listen(port, host)
  await listening
  return httpUrl(host, (server.address() as AddressInfo).port)
}
