import { existsSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { bundleIdSchema, isSha256, type Logger, toWarrenError, WarrenError } from '@warren/shared'
import type { SandboxNode } from '../node.js'

/**
 * A node's bundles for its peers, on its RPC port (behind the cluster
 * secret like every route there):
 *
 * - `GET /bundles/sandbox/<id>`: packs the paused sandbox now and answers
 *   its manifest (409 unless paused, 404 unknown);
 * - `GET /bundles/template/<templateId>[/<buildId>]?need=<layer,…>`: a
 *   template build's metadata, with the layers named in `need` packed;
 * - `GET /bundles/blobs/<sha256>`: a file this node packed, by its hash.
 *
 * Nothing here is trusted by the caller: it checks every file against the
 * manifest's sha256.
 */
export function bundleHandler(node: SandboxNode, log: Logger) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      if (req.method !== 'GET') throw new WarrenError('invalid_argument', 'only GET is served here')
      const path = new URL(req.url ?? '/', 'http://node').pathname
      const sandbox = /^\/bundles\/sandbox\/([^/]+)$/.exec(path)
      if (sandbox?.[1] && bundleIdSchema.safeParse(sandbox[1]).success) {
        const manifest = await node.exportSnapshot(sandbox[1])
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(manifest))
        return
      }
      const template = /^\/bundles\/template\/([^/]+)(?:\/([^/]+))?$/.exec(path)
      if (template?.[1] && bundleIdSchema.safeParse(template[1]).success) {
        const need = new URL(req.url ?? '/', 'http://node').searchParams.get('need')
        const manifest = await node.snapshots.exportTemplate(
          template[1],
          template[2],
          need ? need.split(',') : [],
        )
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(manifest))
        return
      }
      const blob = /^\/bundles\/blobs\/([^/]+)$/.exec(path)?.[1]
      if (blob && isSha256(blob) && existsSync(node.snapshots.local.blobPath(blob))) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        await pipeline(node.snapshots.local.open({ name: 'blob', sha256: blob, size: 0 }), res)
        return
      }
      throw new WarrenError('not_found', 'no such bundle on this node')
    } catch (err) {
      const e = toWarrenError(err)
      if (e.code === 'internal') log.error({ err }, 'bundle request failed')
      if (res.headersSent) {
        res.destroy()
        return
      }
      const message = e.code === 'internal' ? 'internal error' : e.message
      res
        .writeHead(e.status, { 'content-type': 'application/json' })
        .end(JSON.stringify({ code: e.status, message }))
    }
  }
}
