// Small HTTP pieces of the test registry helper: a plain request function
// (for pushing and probing), free loopback ports, readiness, and the blob
// server that stands in for a registry's redirect target (blob storage).
import type { ChildProcess } from 'node:child_process'
import { createReadStream, readFileSync } from 'node:fs'
import { createServer as createHttpServer, request, type Server } from 'node:http'
import { type AddressInfo, createServer } from 'node:net'
import { join, normalize } from 'node:path'
import type { Blob } from './oci-image.js'

export interface BlobRequest {
  path: string
  authorization: string | undefined
}

export function send(
  host: string,
  method: string,
  path: string,
  body: Blob | undefined,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, string | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`http://${host}${path}`, {
      method,
      headers: { ...headers, 'content-length': String(body?.size ?? 0) },
    })
    req.on('error', reject)
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers as Record<string, string | undefined>,
          body: Buffer.concat(chunks).toString(),
        }),
      )
    })
    if (body?.path) createReadStream(body.path).pipe(req)
    else req.end(body?.data)
  })
}

/** Serves the registry's storage files at their driver paths, recording each request. */
export async function serveBlobs(storage: string, log: BlobRequest[]): Promise<Server> {
  const server = createHttpServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname))
    log.push({ path, authorization: req.headers.authorization })
    try {
      const data = readFileSync(join(storage, path))
      res.writeHead(200, { 'content-length': data.length })
      res.end(data)
    } catch {
      res.writeHead(404)
      res.end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve))
  return server
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })
}

/** Polls GET /v2/ until the registry answers (200, or 401 behind auth). */
export async function ready(host: string, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) return false
    const status = await send(host, 'GET', '/v2/', undefined, {}).then(
      (r) => r.status,
      () => 0,
    )
    if (status === 200 || status === 401) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}
