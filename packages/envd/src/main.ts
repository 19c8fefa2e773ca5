import { listen } from '@warren/shared/listen'
import { checkpointReadiness } from './checkpoint.js'
import { parseConfig } from './config.js'
import { log } from './log.js'
import { createEnvd } from './server.js'
import { createState } from './state.js'
import { ENVD_VERSION } from './version.js'

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

  // A gVisor snapshot's checkpoint: the node signals SIGUSR2 (tini passes it on).
  const readiness = checkpointReadiness(envd.server, config.host, config.port)
  process.on('SIGUSR2', () => readiness.quiesce())
  process.on('SIGHUP', () => readiness.resume())

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
