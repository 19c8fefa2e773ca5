// A private PostgreSQL for one test file (or one fixture): Debian's server
// binaries, a cluster initialised in a temp dir, listening on a free
// loopback port and on a socket inside that dir, with a password of its own.
// Never the system-wide service. It is stopped and removed by stop(), by an
// exit hook, and — when the test process ends without running its exit
// hooks (a vitest worker torn down, a SIGKILL) — by a watchdog of its own.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import pg from 'pg'
import { postgresBinaries } from '../../packages/cli/src/lib/private-postgres.js'

/** PostgreSQL refuses to run as root: its files and processes belong to this user. */
const OS_USER = 'postgres'

export interface PrivatePostgres {
  /** `postgres://warren:…@127.0.0.1:<port>/warren` */
  url: string
  port: number
  dir: string
  /** A new, empty database on this server; its URL. */
  createDatabase(name: string): Promise<string>
  /** Closes every client connection (the server stays up), as a network failure would. */
  dropConnections(): Promise<void>
  stop(): Promise<void>
}

export interface PostgresOptions {
  /**
   * fsync and synchronous commit as in production (benchmarks); tests run
   * without them, which changes no semantics and saves the disk.
   */
  durable?: boolean
}

function asPostgres(cmd: string, args: string[]): string {
  return execFileSync('runuser', ['-u', OS_USER, '--', join(postgresBinaries(), cmd), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** A loopback port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

function uid(name: string): number {
  return Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim())
}

/**
 * A detached shell that waits for this process to be gone, then stops the
 * server and removes its directory: exit hooks do not run when a process is
 * killed by a signal (the in-process suites' servers outlived vitest's
 * workers so), and the server would outlive it. Returns the shell's pid
 * (stop() kills it first).
 */
function startWatchdog(dir: string, data: string): number | undefined {
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
    `runuser -u ${OS_USER} -- ${join(postgresBinaries(), 'pg_ctl')} -D '${data}' -m immediate stop`,
    `rm -rf '${dir}'`,
  ].join('; ')
  const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' })
  child.unref()
  return child.pid
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<PrivatePostgres> {
  const dir = mkdtempSync('/tmp/warren-pg-')
  const data = join(dir, 'data')
  const password = randomBytes(16).toString('hex')
  const owner = uid(OS_USER)
  chownSync(dir, owner, owner)
  chmodSync(dir, 0o700)
  writeFileSync(join(dir, 'pwfile'), `${password}\n`, { mode: 0o600 })
  chownSync(join(dir, 'pwfile'), owner, owner)
  const port = await freePort()
  let started = false
  let watchdog: number | undefined
  const stopNow = () => {
    if (started)
      spawnSync(
        'runuser',
        [
          '-u',
          OS_USER,
          '--',
          join(postgresBinaries(), 'pg_ctl'),
          '-D',
          data,
          '-m',
          'immediate',
          'stop',
        ],
        {
          stdio: 'ignore',
        },
      )
    started = false
    rmSync(dir, { recursive: true, force: true })
    // Last: a process killed while stopping leaves the rest to the watchdog.
    if (watchdog !== undefined) {
      try {
        process.kill(watchdog, 'SIGKILL')
      } catch {}
      watchdog = undefined
    }
  }
  const onExit = () => stopNow()
  process.once('exit', onExit)
  try {
    asPostgres('initdb', [
      '-D',
      data,
      '--username=warren',
      `--pwfile=${join(dir, 'pwfile')}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--no-instructions',
    ])
    const settings = [
      `listen_addresses = '127.0.0.1'`,
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      'max_connections = 200',
      ...(opts.durable
        ? []
        : ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off']),
    ]
    writeFileSync(join(data, 'postgresql.auto.conf'), `${settings.join('\n')}\n`)
    asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start'])
    started = true
    watchdog = startWatchdog(dir, data)
    const url = `postgres://warren:${password}@127.0.0.1:${port}`
    const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
      const c = new pg.Client({ connectionString: `${url}/postgres` })
      await c.connect()
      try {
        return await fn(c)
      } finally {
        await c.end()
      }
    }
    const createDatabase = async (name: string) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`)
      await admin((c) => c.query(`CREATE DATABASE ${name}`))
      return `${url}/${name}`
    }
    await createDatabase('warren')
    return {
      url: `${url}/warren`,
      port,
      dir,
      createDatabase,
      async dropConnections() {
        await admin((c) =>
          c.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = $1',
            ['client backend'],
          ),
        )
      },
      async stop() {
        process.removeListener('exit', onExit)
        stopNow()
      },
    }
  } catch (err) {
    process.removeListener('exit', onExit)
    stopNow()
    throw err
  }
}
