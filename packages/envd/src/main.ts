import { listen } from '@warren/shared/listen'
import { parseConfig } from './config.js'
import { log } from './log.js'
import { createEnvd } from './server.js'
import { createState } from './state.js'
import { ENVD_VERSION } from './version.js'

/** How long envd stops listening when asked to, before a checkpoint (see main). */
const QUIESCE_MS = 3000

/** envd's entry point: the sandbox's first process (PID 1 in its namespace), running as root. */
function main(): void {
  let config: ReturnType<typeof parseConfig>
  try {
    config = parseConfig(process.argv.slice(2), process.env)
  } catch (err) {
    log.error('invalid arguments', { err })
    process.exit(2)
  }
  const envd = createEnvd(config, createState())
  // Also after it listens: a server error (accept failing, say) ends envd.
  envd.server.on('error', (err) => {
    log.error('server error', { err })
    process.exit(1)
  })
  listen(envd.server, config.host, config.port).then(
    () => log.info('listening', { host: config.host, port: config.port, version: ENVD_VERSION }),
    () => {}, // logged by the error handler, which exits
  )

  // Before a gVisor checkpoint (a snapshot or fork) the node signals
  // SIGUSR2 (tini passes it on): Debian's gVisor cannot save a listening
  // socket that epoll watches, so envd stops listening for a moment and
  // listens again after QUIESCE_MS, in the source and in every sandbox
  // restored from the image (its timer runs on there).
  process.on('SIGUSR2', () => {
    log.info('not listening for a checkpoint', { ms: QUIESCE_MS })
    envd.server.close()
    setTimeout(() => void listen(envd.server, config.host, config.port).catch(() => {}), QUIESCE_MS)
  })

  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('shutting down', { signal })
    const force = setTimeout(() => process.exit(0), 3000)
    force.unref()
    void envd.close().then(() => process.exit(0))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main()
