import { type ChildProcess, spawn } from 'node:child_process'

/**
 * Host tools are started by a small helper process, not by the node's own.
 * Node starts a child with fork(), whose cost grows with the parent's
 * memory: in `warren up` (API, node and edge in one process, ~160 MB) each
 * `runc`, `ip` or `mount` blocked the event loop for 10–35 ms, delaying
 * every answer and proxied request meanwhile — a kill's answer waited on
 * the forks of the teardown it had just queued. The helper is a bare Node
 * (~40 MB): its forks are cheap and do not stall the node.
 *
 * The helper's source is inline so that it runs the same from `dist` and
 * from the TypeScript sources under test. It exits when the node does (its
 * channel closes); commands it started run on, as they would have.
 */
const CHILD_SOURCE = `
const { spawn } = require('node:child_process')
const { openSync, closeSync } = require('node:fs')
process.on('disconnect', () => process.exit(0))
const send = (m) => { if (process.connected) process.send(m, undefined, undefined, () => {}) }
process.on('message', (m) => {
  let log
  const done = (r) => {
    if (log !== undefined) closeSync(log)
    send({ id: m.id, ...r })
  }
  let child
  try {
    if (m.logPath) log = openSync(m.logPath, 'a', 0o600)
    child = spawn(m.cmd, m.args, {
      stdio: log !== undefined ? ['ignore', log, log] : ['pipe', 'pipe', 'pipe'],
      ...(m.cwd ? { cwd: m.cwd } : {}),
    })
  } catch (e) {
    return done({ code: null, error: e.message })
  }
  const out = []
  const err = []
  let timer
  if (m.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), m.timeoutMs)
  child.on('error', (e) => {
    clearTimeout(timer)
    done({ code: null, error: e.message })
  })
  // A detached start (logPath) ends at 'exit': what it started keeps the log open.
  child.on(log !== undefined ? 'exit' : 'close', (code) => {
    clearTimeout(timer)
    done({ code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() })
  })
  if (log === undefined) {
    child.stdout.on('data', (b) => out.push(b))
    child.stderr.on('data', (b) => err.push(b))
    child.stdin.on('error', () => {})
    child.stdin.end(m.input ?? '')
  }
})
`

export interface SpawnRequest {
  cmd: string
  args: string[]
  input?: string
  timeoutMs?: number
  cwd?: string
  /** Stdout and stderr appended to this file; done when the command exits. */
  logPath?: string
}

export interface SpawnResult {
  /** Null when killed by a signal or never started (then `error`). */
  code: number | null
  out: string
  err: string
  error?: string
}

type Waiter = (r: SpawnResult) => void

/** The helper process and the commands it is running for us. */
class Spawner {
  private child: ChildProcess | undefined
  private readonly waiting = new Map<number, Waiter>()
  private nextId = 0

  run(req: SpawnRequest): Promise<SpawnResult> {
    const child = this.child ?? this.start()
    const id = ++this.nextId
    return new Promise((resolve) => {
      if (this.waiting.size === 0) setRef(child, true)
      this.waiting.set(id, resolve)
      child.send({ id, ...req }, (err) => {
        if (err) this.settle(id, { code: null, out: '', err: '', error: err.message })
      })
    })
  }

  private start(): ChildProcess {
    const child = spawn(process.execPath, ['-e', CHILD_SOURCE], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.child = child
    setRef(child, false)
    child.on('message', (m: SpawnResult & { id: number }) => this.settle(m.id, m))
    child.on('error', () => {}) // 'exit' follows, or sends fail on their own
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined
      // Whatever it was running is no longer watched: those commands fail.
      const error = `the command helper exited (${signal ?? code})`
      for (const id of [...this.waiting.keys()])
        this.settle(id, { code: null, out: '', err: '', error })
    })
    return child
  }

  private settle(id: number, r: SpawnResult): void {
    const waiter = this.waiting.get(id)
    if (!waiter) return
    this.waiting.delete(id)
    if (this.waiting.size === 0 && this.child) setRef(this.child, false)
    waiter(r)
  }
}

/** Idle, the helper must not keep the node's process alive; busy, it must. */
function setRef(child: ChildProcess, on: boolean): void {
  const channel = child.channel as { ref(): void; unref(): void } | undefined
  if (on) {
    child.ref()
    channel?.ref()
  } else {
    child.unref()
    channel?.unref()
  }
}

const spawner = new Spawner()

/** Runs a command in the helper process (see above). Never rejects. */
export function spawnCommand(req: SpawnRequest): Promise<SpawnResult> {
  return spawner.run(req)
}
