import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { WarrenError } from '@warren/shared'

/** `sha256:<hex>` → a hash of that algorithm (the digest was validated at the edge). */
function hashFor(digest: string): Hash {
  const algorithm = digest.slice(0, digest.indexOf(':'))
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new WarrenError('bad_gateway', `unsupported digest algorithm in '${digest}'`)
  }
  return createHash(algorithm)
}

export function digestOf(data: Buffer, algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`
}

export function digestMismatch(what: string, expected: string, actual: string): WarrenError {
  return new WarrenError(
    'bad_gateway',
    `${what} does not match its digest: expected ${expected}, got ${actual}; nothing was kept`,
    { details: { expected, actual } },
  )
}

/** Throws unless `data` hashes to `digest`. */
export function verifyBuffer(what: string, data: Buffer, digest: string): void {
  const actual = `${digest.slice(0, digest.indexOf(':'))}:${hashFor(digest).update(data).digest('hex')}`
  if (actual !== digest) throw digestMismatch(what, digest, actual)
}

/**
 * Passes bytes through while hashing them, and fails the stream at its end
 * unless they hash to `digest`. With `size`, it also fails as soon as more
 * bytes arrive than announced, so a registry cannot feed an endless blob.
 */
export class DigestVerifier extends Transform {
  private readonly hash: Hash
  private bytes = 0

  constructor(
    private readonly what: string,
    private readonly digest: string,
    private readonly size?: number,
  ) {
    super()
    this.hash = hashFor(digest)
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length
    if (this.size !== undefined && this.bytes > this.size) {
      cb(new WarrenError('bad_gateway', `${this.what} is larger than its ${this.size} bytes`))
      return
    }
    this.hash.update(chunk)
    cb(null, chunk)
  }

  override _flush(cb: TransformCallback): void {
    const actual = `${this.digest.slice(0, this.digest.indexOf(':'))}:${this.hash.digest('hex')}`
    if (actual !== this.digest) {
      cb(digestMismatch(this.what, this.digest, actual))
    } else if (this.size !== undefined && this.bytes !== this.size) {
      cb(new WarrenError('bad_gateway', `${this.what} has ${this.bytes} bytes, not ${this.size}`))
    } else {
      cb()
    }
  }

  get bytesSeen(): number {
    return this.bytes
  }
}
