import { type OnReadOpts, Socket } from 'node:net'
import { TLSSocket } from 'node:tls'

/** The fields a socket made with `onread` has set (node's lib/net.js, v18-v22): found by description. */
const FIELDS = ['kBuffer', 'kBufferCb', 'kBufferGen'] as const

interface StreamHandle {
  useUserBuffer(buf: Uint8Array): void
}

/**
 * Makes an accepted plain TCP socket read as if it had been dialed with
 * `onread` (`bulk-reads.ts`): Node offers that option to `net.connect` only,
 * so every other socket reads at most 64 KiB at a time into fresh memory
 * (in a relay moving an upload, a read, a write and a wake-up of the next
 * hop per 64 KiB, and the garbage to collect). It does what Node's socket
 * constructor does for `onread`, on the socket as it is: the three fields
 * that route reads to the callback, and the handle's first buffer.
 *
 * Returns the bytes Node had already read into the socket (the caller
 * passes them on before any chunk of `onread`), or undefined, the socket
 * untouched, where this is not a plain TCP socket, something listens to its
 * 'data' (it would get those bytes too, and then nothing more), or this
 * Node lacks the fields: then it is read as before.
 */
export function adoptOnread(socket: Socket, onread: OnReadOpts): Buffer[] | undefined {
  if (!(socket instanceof Socket) || socket instanceof TLSSocket) return undefined
  if (socket.listenerCount('data') > 0) return undefined
  const handle = (socket as unknown as { _handle?: Partial<StreamHandle> })._handle
  if (typeof handle?.useUserBuffer !== 'function' || typeof onread.buffer !== 'function') {
    return undefined
  }
  const symbols = Object.getOwnPropertySymbols(socket)
  const [kBuffer, kBufferCb, kBufferGen] = FIELDS.map((name) =>
    symbols.find((s) => s.description === name),
  )
  if (!kBuffer || !kBufferCb || !kBufferGen) return undefined
  const fields = socket as unknown as Record<symbol, unknown>
  // What an onread socket has, and `null` in any other: not one already.
  if (fields[kBuffer] !== null || fields[kBufferCb] !== null) return undefined

  socket.pause()
  const first = onread.buffer()
  fields[kBufferGen] = onread.buffer
  fields[kBufferCb] = onread.callback
  fields[kBuffer] = first
  handle.useUserBuffer(first)
  // From here on reads go to `onread`; what came before is in the buffer.
  const earlier: Buffer[] = []
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read()) {
    earlier.push(chunk)
  }
  return earlier
}
