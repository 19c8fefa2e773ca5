/** Start-up options, from flags first, then environment, then defaults. */
export interface EnvdConfig {
  port: number
  host: string
  /** How often a tunnel pings its WebSocket peer. */
  tunnelPingIntervalMs: number
  /** How long a tunnel waits for the pong before tearing down. */
  tunnelPongTimeoutMs: number
}

const DEFAULTS: EnvdConfig = {
  port: 49983,
  host: '0.0.0.0',
  tunnelPingIntervalMs: 30_000,
  tunnelPongTimeoutMs: 5_000,
}

const FLAGS: Record<string, { key: keyof EnvdConfig; env: string }> = {
  '--port': { key: 'port', env: 'ENVD_PORT' },
  '--host': { key: 'host', env: 'ENVD_HOST' },
  '--tunnel-ping-interval-ms': { key: 'tunnelPingIntervalMs', env: 'ENVD_TUNNEL_PING_INTERVAL_MS' },
  '--tunnel-pong-timeout-ms': { key: 'tunnelPongTimeoutMs', env: 'ENVD_TUNNEL_PONG_TIMEOUT_MS' },
}

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): EnvdConfig {
  const raw = new Map<keyof EnvdConfig, string>()
  for (const { key, env: name } of Object.values(FLAGS)) {
    const value = env[name]
    if (value !== undefined && value !== '') raw.set(key, value)
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    const flag = FLAGS[name]
    if (!flag) throw new Error(`unknown flag ${name}`)
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1)
    if (value === undefined) throw new Error(`flag ${name} needs a value`)
    raw.set(flag.key, value)
  }
  const config = { ...DEFAULTS }
  for (const [key, value] of raw) {
    if (key === 'host') {
      config.host = value
      continue
    }
    const n = Number(value)
    const max = key === 'port' ? 65535 : 86_400_000
    if (!Number.isInteger(n) || n < (key === 'port' ? 0 : 1) || n > max) {
      throw new Error(`invalid value for ${key}: ${value}`)
    }
    config[key] = n
  }
  return config
}
