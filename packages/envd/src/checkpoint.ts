import { mkdirSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { dirname } from 'node:path'
import { ENVD_TIME_WAIT_FILE, GVISOR_TIME_WAIT_MS } from '@warren/shared/envd-checkpoint'
import { listen } from '@warren/shared/listen'
import { log } from './log.js'

/** How long envd stops listening when asked to, before a checkpoint. */
const QUIESCE_MS = 3000

/**
 * Readiness for a gVisor checkpoint (a snapshot or fork that keeps memory).
 * Debian's gVisor (2022) cannot save a socket that epoll watches (envd's
 * listener, its connections) nor a TCP connection that is open or in
 * TIME_WAIT, and a refused save ends the sandbox. So envd
 * - on `quiesce()` (the node's SIGUSR2) resets every connection it holds (a
 *   reset leaves no TIME_WAIT) and stops listening, in which the checkpoint
 *   begins; the source and every copy restored from the image listen again
 *   on `resume()` (the node's SIGHUP right after the restore), or after
 *   QUIESCE_MS if no checkpoint follows (a snapshot that keeps files only);
 * - notes in ENVD_TIME_WAIT_FILE until when a connection it closed first (so
 *   in TIME_WAIT, where gVisor ignores resets) blocks a checkpoint: the node
 *   waits or refuses the snapshot instead of losing the sandbox.
 */
export function checkpointReadiness(
  server: Server,
  host: string,
  port: number,
  opts: { timeWaitFile?: string; quiesceMs?: number } = {},
): { quiesce(): void; resume(): void } {
  const { timeWaitFile = ENVD_TIME_WAIT_FILE, quiesceMs = QUIESCE_MS } = opts
  const connections = new Set<Socket>()
  const reset = new WeakSet<Socket>()
  let timeWaitUntil = 0
  let again: NodeJS.Timeout | undefined

  server.on('connection', (socket: Socket) => {
    connections.add(socket)
    let peerEnded = false
    // Before net's own 'end' handler, which ends our side in turn.
    socket.prependListener('end', () => {
      peerEnded = true
    })
    socket.once('close', (hadError) => {
      connections.delete(socket)
      // Closed by us, not after the peer's FIN nor by a reset: TIME_WAIT.
      if (peerEnded || hadError || reset.has(socket)) return
      timeWaitUntil = Date.now() + GVISOR_TIME_WAIT_MS
      try {
        mkdirSync(dirname(timeWaitFile), { recursive: true })
        writeFileSync(timeWaitFile, String(timeWaitUntil))
      } catch (err) {
        log.warn('could not note a closed connection for checkpoints', { err })
      }
    })
  })

  return {
    quiesce() {
      log.info('not listening for a checkpoint', {
        ms: quiesceMs,
        reset: connections.size,
        timeWaitMs: Math.max(0, timeWaitUntil - Date.now()),
      })
      for (const socket of connections) {
        reset.add(socket)
        socket.resetAndDestroy()
      }
      server.close()
      clearTimeout(again)
      again = setTimeout(() => this.resume(), quiesceMs)
    },
    resume() {
      clearTimeout(again)
      if (!server.listening) void listen(server, host, port).catch(() => {})
    },
  }
}
