import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { WarrenError } from '@warren/shared'

/**
 * A PostgreSQL server of Warren's own, from Debian's packages, in a directory
 * it keeps (its data survives restarts): on loopback only, on the given port
 * and on a socket in that directory, with a password of its own. Never the
 * system-wide service.
 */
export interface PrivatePostgres {
  /** `postgres://warren:…@127.0.0.1:<port>/<database>` */
  url: string
  port: number
  stop(): Promise<void>
}

export interface PrivatePostgresOptions {
  dir: string
  port: number
  database: string
  /** fsync and synchronous commit (off only for throwaway data: tests). */
  durable?: boolean
}

/** PostgreSQL refuses to run as root: its files and processes belong to this user. */
const OS_USER = 'postgres'

/** The newest installed server's binaries (`/usr/lib/postgresql/<major>/bin`). */
export function postgresBinaries(): string {
  const root = '/usr/lib/postgresql'
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : []
  if (!majors[0])
    throw new WarrenError(
      'unavailable',
      "PostgreSQL's server is not installed: apt-get install postgresql (npm run setup does)",
    )
  return join(root, majors[0], 'bin')
}

function run(bin: string, cmd: string, args: string[], asPostgres: boolean): string {
  const [file, argv] = asPostgres
    ? ['runuser', ['-u', OS_USER, '--', join(bin, cmd), ...args]]
    : [join(bin, cmd), args]
  try {
    return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim()
    throw new WarrenError('internal', `postgres ${cmd} failed: ${stderr || (err as Error).message}`)
  }
}

function ownedByPostgres(path: string): void {
  const uid = Number(execFileSync('id', ['-u', OS_USER], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', OS_USER], { encoding: 'utf8' }).trim())
  chownSync(path, uid, gid)
}

/** Initialises the cluster on first use, starts it, and makes the database if missing. */
export async function startPrivatePostgres(o: PrivatePostgresOptions): Promise<PrivatePostgres> {
  if (!/^[a-z_][a-z0-9_]*$/.test(o.database))
    throw new WarrenError('invalid_argument', `bad database name ${o.database}`)
  const bin = postgresBinaries()
  const data = join(o.dir, 'data')
  const passwordFile = join(o.dir, 'password')
  mkdirSync(o.dir, { recursive: true, mode: 0o700 })
  ownedByPostgres(o.dir)
  if (!existsSync(join(data, 'PG_VERSION'))) {
    writeFileSync(passwordFile, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 })
    ownedByPostgres(passwordFile)
    run(
      bin,
      'initdb',
      [
        '-D',
        data,
        '--username=warren',
        `--pwfile=${passwordFile}`,
        // The socket lives in the 0700 directory: only root and postgres reach it.
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '--encoding=UTF8',
        '--no-instructions',
      ],
      true,
    )
  }
  const password = readFileSync(passwordFile, 'utf8').trim()
  const settings = [
    `listen_addresses = '127.0.0.1'`,
    `port = ${o.port}`,
    `unix_socket_directories = '${o.dir}'`,
    'max_connections = 200',
    ...(o.durable === false ? ['fsync = off', 'synchronous_commit = off'] : []),
  ]
  const conf = join(data, 'postgresql.auto.conf')
  writeFileSync(conf, `${settings.join('\n')}\n`, { mode: 0o600 })
  ownedByPostgres(conf)
  run(bin, 'pg_ctl', ['-D', data, '-l', join(o.dir, 'server.log'), '-w', '-t', '60', 'start'], true)
  const stop = async () => {
    run(bin, 'pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop'], true)
  }
  try {
    const socket = ['-h', o.dir, '-p', String(o.port), '-U', 'warren']
    const exists = run(
      bin,
      'psql',
      [
        ...socket,
        '-d',
        'postgres',
        '-tAc',
        `SELECT 1 FROM pg_database WHERE datname = '${o.database}'`,
      ],
      false,
    ).trim()
    if (exists !== '1') run(bin, 'createdb', [...socket, o.database], false)
  } catch (err) {
    await stop().catch(() => {})
    throw err
  }
  return {
    url: `postgres://warren:${encodeURIComponent(password)}@127.0.0.1:${o.port}/${o.database}`,
    port: o.port,
    stop,
  }
}
