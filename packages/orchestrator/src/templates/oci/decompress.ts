import { Duplex, PassThrough, Transform, type TransformCallback } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { WarrenError } from '@warren/shared'
import { Decompress } from 'fzstd'

export type Compression = 'gzip' | 'zstd' | 'none'

/** By magic number, as containerd does: media types are often mislabelled. */
export function detectCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd'
  return 'none'
}

/** fzstd's push decoder as a stream (Node 20's zlib has no zstd). */
class ZstdDecompress extends Transform {
  private readonly decoder = new Decompress((chunk) => {
    // A copy: the decoder may reuse its block buffers.
    if (chunk.length) this.push(Buffer.from(chunk))
  })

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.decoder.push(chunk)
      cb()
    } catch (err) {
      cb(corrupt('zstd', err))
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.decoder.push(new Uint8Array(0), true)
      cb()
    } catch (err) {
      cb(corrupt('zstd', err))
    }
  }
}

function corrupt(kind: string, err: unknown): WarrenError {
  return new WarrenError('bad_gateway', `the layer is not valid ${kind} data: ${String(err)}`, {
    cause: err,
  })
}

/**
 * Decompresses gzip, zstd or plain tar, chosen by the first bytes. The
 * decoder's own backpressure is kept: it is paused while our reader is full,
 * so a small compressed blob cannot balloon in memory.
 */
export class Decompressor extends Duplex {
  private inner: Transform | undefined
  private head = Buffer.alloc(0)
  compression: Compression | undefined

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.inner) {
      this.head = Buffer.concat([this.head, chunk])
      if (this.head.length < 4) {
        cb()
        return
      }
      chunk = this.head
      this.head = Buffer.alloc(0)
      this.start(chunk)
    }
    if (this.inner!.write(chunk)) cb()
    else this.inner!.once('drain', () => cb())
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.inner) {
      const head = this.head
      this.start(Buffer.concat([head, Buffer.alloc(4)]))
      if (head.length) this.inner!.write(head)
    }
    this.inner!.end()
    cb()
  }

  override _read(): void {
    this.inner?.resume()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner?.destroy()
    cb(err)
  }

  private start(head: Buffer): void {
    this.compression = detectCompression(head)
    const inner: Transform =
      this.compression === 'gzip'
        ? createGunzip()
        : this.compression === 'zstd'
          ? new ZstdDecompress()
          : new PassThrough()
    inner.on('data', (d: Buffer) => {
      if (!this.push(d)) inner.pause()
    })
    inner.on('end', () => this.push(null))
    inner.on('error', (err) =>
      this.destroy(err instanceof WarrenError ? err : corrupt(this.compression ?? '', err)),
    )
    this.inner = inner
  }
}
