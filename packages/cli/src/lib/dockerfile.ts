import { DockerfileParser, type ModifiableInstruction } from 'dockerfile-ast'

/** One step of a Dockerfile as Warren's build protocol knows it. */
export type PlanStep =
  | { type: 'RUN'; cmd: string; user?: string }
  | { type: 'COPY'; src: string; dest: string; user?: string; mode?: string }
  | { type: 'ENV'; vars: Record<string, string> }
  | { type: 'WORKDIR'; path: string }
  | { type: 'USER'; user: string }

export interface DockerfilePlan {
  from: string
  steps: PlanStep[]
  startCmd?: string
  /** The first TCP port EXPOSE names: the start command is ready once it listens. */
  readyPort?: number
  /** Instructions that have no meaning for a template (LABEL, VOLUME…): said, not hidden. */
  ignored: string[]
}

const IGNORED = new Set(['LABEL', 'VOLUME', 'STOPSIGNAL', 'HEALTHCHECK', 'MAINTAINER'])

/** `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alt}` from `vars`. */
export function substitute(text: string, vars: Record<string, string>): string {
  return text.replace(
    /\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (m, braced: string, op: string, word: string, bare: string) => {
      if (m === '\\$') return '$'
      const name = braced ?? bare
      const v = vars[name]
      if (op === '-') return v ? v : word
      if (op === '+') return v ? word : ''
      return v ?? ''
    },
  )
}

function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`
}

/**
 * The instruction's words: the exec form (a JSON array of strings, read as
 * JSON: dockerfile-ast's own reading drops spaces and keeps quotes) as
 * given, anything else as one shell string.
 */
function words(ins: ModifiableInstruction): { json?: string[]; text: string } {
  const text = (ins.getArgumentsContent() ?? '').replace(/\\\r?\n/g, '').trim()
  if (text.startsWith('[')) {
    try {
      const v: unknown = JSON.parse(text)
      if (Array.isArray(v) && v.length && v.every((w) => typeof w === 'string'))
        return { json: v, text: '' }
    } catch {
      // Not JSON: Docker runs it in a shell, as written.
    }
  }
  return { text }
}

/**
 * Reads a single-stage Dockerfile into build steps: FROM, RUN, COPY/ADD
 * (local sources; --chown, --chmod), ENV, ARG (build args, defaults, and
 * their use in later instructions), WORKDIR, USER, and CMD/ENTRYPOINT as
 * the start command. As in Docker, steps run as root until a USER says
 * otherwise. Anything it cannot honour is an error, never skipped quietly.
 */
export function planDockerfile(
  text: string,
  buildArgs: Record<string, string> = {},
): DockerfilePlan {
  const instructions = DockerfileParser.parse(text).getInstructions()
  const froms = instructions.filter((i) => i.getKeyword() === 'FROM')
  if (froms.length !== 1)
    throw new Error(
      froms.length ? 'multi-stage Dockerfiles are not supported' : 'no FROM instruction',
    )
  const args: Record<string, string> = {}
  const env: Record<string, string> = {}
  const vars = () => ({ ...args, ...env })
  const steps: PlanStep[] = []
  const ignored: string[] = []
  let from = ''
  let userSet = false
  let readyPort: number | undefined
  let entrypoint: string[] | string | undefined
  let cmd: string[] | string | undefined
  for (const ins of instructions) {
    const kw = ins.getKeyword()
    const { json, text: raw } = words(ins as ModifiableInstruction)
    const line = ins.getRange().start.line + 1
    const fail = (why: string): never => {
      throw new Error(`Dockerfile line ${line}: ${kw} ${why}`)
    }
    switch (kw) {
      case 'ARG':
        for (const a of ins.getArguments().map((x) => x.getValue())) {
          const eq = a.indexOf('=')
          const name = eq === -1 ? a : a.slice(0, eq)
          args[name] = buildArgs[name] ?? (eq === -1 ? '' : substitute(a.slice(eq + 1), vars()))
        }
        break
      case 'FROM': {
        const parts = ins.getArguments().map((a) => substitute(a.getValue(), vars()))
        if (parts.length > 1) fail('with AS (a stage name) is not supported')
        from = parts[0] ?? fail('needs an image or template')
        break
      }
      case 'RUN': {
        const c = json ? json.map(shq).join(' ') : raw
        if (!c) fail('needs a command')
        const exported = Object.entries(args)
        const prefix = exported.length
          ? `export ${exported.map(([k, v]) => `${k}=${shq(v)}`).join(' ')}; `
          : ''
        steps.push({ type: 'RUN', cmd: prefix + c, ...(userSet ? {} : { user: 'root' }) })
        break
      }
      case 'COPY':
      case 'ADD': {
        const flags = (ins as ModifiableInstruction).getFlags()
        let user: string | undefined
        let mode: string | undefined
        for (const f of flags) {
          const v = substitute(f.getValue() ?? '', vars())
          if (f.getName() === 'chown') user = v
          else if (f.getName() === 'chmod')
            mode = /^[0-7]{3,4}$/.test(v) ? v : fail(`--chmod=${v} is not an octal mode`)
          else fail(`--${f.getName()} is not supported`)
        }
        const parts = (json ?? ins.getArguments().map((a) => a.getValue())).map((p) =>
          substitute(p, vars()),
        )
        if (parts.length < 2) fail('needs a source and a destination')
        const dest = parts.at(-1)!
        for (const src of parts.slice(0, -1)) {
          if (/^[a-z]+:\/\//i.test(src)) fail(`from a URL (${src}) is not supported`)
          steps.push({
            type: 'COPY',
            src,
            dest: parts.length > 2 && !dest.endsWith('/') ? `${dest}/` : dest,
            user: user ?? (userSet ? undefined : 'root'),
            ...(mode ? { mode } : {}),
          })
        }
        break
      }
      case 'ENV': {
        const props = (
          ins as unknown as {
            getProperties(): Array<{ getName(): string; getValue(): string | null }>
          }
        ).getProperties()
        const set: Record<string, string> = {}
        for (const p of props) set[p.getName()] = substitute(p.getValue() ?? '', vars())
        Object.assign(env, set)
        steps.push({ type: 'ENV', vars: set })
        break
      }
      case 'WORKDIR':
        steps.push({ type: 'WORKDIR', path: substitute(raw, vars()) || fail('needs a path') })
        break
      case 'USER':
        userSet = true
        steps.push({ type: 'USER', user: substitute(raw, vars()) || fail('needs a user') })
        break
      case 'EXPOSE':
        for (const spec of ins.getArguments().map((a) => substitute(a.getValue(), vars()))) {
          const m = /^(\d{1,5})(?:-\d{1,5})?(?:\/(tcp|udp|sctp))?$/i.exec(spec)
          const port = Number(m?.[1])
          if (!m || port < 1 || port > 65535) fail(`'${spec}' is not a port`)
          if (readyPort === undefined && (m?.[2] ?? 'tcp').toLowerCase() === 'tcp') readyPort = port
        }
        break
      case 'CMD':
        cmd = json ?? raw
        break
      case 'ENTRYPOINT':
        entrypoint = json ?? raw
        break
      default:
        if (IGNORED.has(kw)) ignored.push(`${kw} (line ${line})`)
        else fail('is not supported')
    }
  }
  const start = startOf(entrypoint, cmd)
  return {
    from,
    steps,
    ignored,
    ...start,
    ...(start.startCmd && readyPort !== undefined ? { readyPort } : {}),
  }
}

/**
 * A ready check for "something listens on TCP `port`" that needs nothing
 * of the image but grep: the LISTEN (0A) sockets in /proc/net/tcp{,6},
 * whose local port is in hex. (E2B's waitForPort needs `ss`, which images
 * like python or node do not have.)
 */
export function portReadyCmd(port: number): string {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  return `grep -qs ':${hex} [0-9A-F]*:[0-9A-F]* 0A ' /proc/net/tcp /proc/net/tcp6`
}

/** Docker's ENTRYPOINT + CMD as one shell command line. */
function startOf(
  entrypoint: string[] | string | undefined,
  cmd: string[] | string | undefined,
): { startCmd?: string } {
  const line = (v: string[] | string) => (Array.isArray(v) ? v.map(shq).join(' ') : v)
  if (entrypoint !== undefined) {
    // A shell-form entrypoint ignores CMD, as in Docker.
    const tail = Array.isArray(entrypoint) && cmd !== undefined ? ` ${line(cmd)}` : ''
    return { startCmd: line(entrypoint) + tail }
  }
  return cmd !== undefined ? { startCmd: line(cmd) } : {}
}
