import { closeSync, createWriteStream, openSync, readSync } from 'node:fs'
import { join, posix } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { WarrenError } from '@warren/shared'
import { list } from 'tar'
import type { NodeContext } from '../context.js'
import type { BuildState, StepInput } from './build-cache.js'
import { type BuildSandbox, inBuildSandbox } from './build-sandbox.js'
import { type ArchiveEntry, copyScript, shq } from './copy-plan.js'
import { runCommand, uploadFile } from './envd-client.js'
import { layerRel } from './layer-store.js'
import type { TemplateMetadata } from './metadata.js'
import { ImageView } from './oci/image-view.js'

/** What every step of one build shares. */
export interface StepContext {
  ctx: NodeContext
  /** The base's metadata: uid shift, pids limit and privileges of every build sandbox. */
  base: TemplateMetadata
  cpuCount: number
  memoryMb: number
  diskSizeMb: number
  /** A directory of the build's own for downloaded archives. */
  work: string
  filesUrls: Record<string, string>
  log: (level: 'info' | 'warn' | 'error', message: string) => void
  signal: AbortSignal
}

/** A step that failed for a reason its author can act on (its output is in the log). */
export class StepFailure extends Error {}

/** The metadata a sandbox standing on `state` boots with. */
export function stateTemplate(base: TemplateMetadata, state: BuildState): TemplateMetadata {
  const { startCmd: _s, readyCmd: _r, ...rest } = base
  return {
    ...rest,
    layers: state.layers,
    envVars: state.envVars,
    defaultUser: state.user,
    defaultWorkdir: state.workdir,
  }
}

/**
 * Applies one step to a state. ENV and USER change only settings; WORKDIR
 * makes its directory when the stack lacks it; RUN and COPY run in a build
 * sandbox standing on the state's layers, whose writable layer becomes the
 * next layer (none when the step wrote nothing).
 */
export async function applyStep(
  sc: StepContext,
  state: BuildState,
  step: StepInput,
): Promise<BuildState> {
  const [a0 = '', a1 = '', a2 = '', a3 = ''] = step.args
  switch (step.type) {
    case 'ENV': {
      if (step.args.length % 2 !== 0) throw new StepFailure('ENV takes name and value pairs')
      const envVars = { ...state.envVars }
      for (let i = 0; i < step.args.length; i += 2) envVars[step.args[i]!] = step.args[i + 1]!
      return { ...state, envVars }
    }
    case 'USER':
      if (!a0) throw new StepFailure('USER needs a user name')
      return { ...state, user: a0 }
    case 'WORKDIR': {
      if (!a0) throw new StepFailure('WORKDIR needs a path')
      const workdir = posix.resolve(state.workdir, a0)
      if (isDirInStack(sc.ctx.templatesDir, state.layers, workdir)) return { ...state, workdir }
      const next = await inSandbox(sc, state, (sb) =>
        run(sc, sb, { cmd: `mkdir -p ${shq(workdir)}`, user: 'root', cwd: '/' }, state),
      )
      return { ...next, workdir }
    }
    case 'RUN':
      if (!a0) throw new StepFailure('RUN needs a command')
      return inSandbox(sc, state, (sb) =>
        run(sc, sb, { cmd: a0, user: a1 || state.user, cwd: state.workdir }, state),
      )
    case 'COPY':
      return copy(sc, state, step, { src: a0, dest: a1, owner: a2 || state.user, mode: a3 })
    default:
      throw new StepFailure(`unsupported step type '${step.type}'`)
  }
}

async function inSandbox(
  sc: StepContext,
  state: BuildState,
  fn: (sb: BuildSandbox) => Promise<void>,
): Promise<BuildState> {
  return inBuildSandbox(
    sc.ctx,
    {
      template: stateTemplate(sc.base, state),
      cpuCount: sc.cpuCount,
      memoryMb: sc.memoryMb,
      diskSizeMb: sc.diskSizeMb,
    },
    async (sb) => {
      await fn(sb)
      const id = await sb.commit()
      return id ? { ...state, layers: [layerRel(id), ...state.layers] } : state
    },
  )
}

async function run(
  sc: StepContext,
  sb: BuildSandbox,
  cmd: { cmd: string; user: string; cwd: string },
  state: BuildState,
): Promise<void> {
  const lines = lineSplitter((line) => sc.log('info', line))
  const code = await runCommand(
    sb.target,
    { ...cmd, envs: state.envVars },
    { onOutput: lines.push, signal: sc.signal },
  )
  lines.flush()
  if (code !== 0) throw new StepFailure(`command exited with code ${code}`)
}

async function copy(
  sc: StepContext,
  state: BuildState,
  step: StepInput,
  c: { src: string; dest: string; owner: string; mode: string },
): Promise<BuildState> {
  if (!c.src || !c.dest) throw new StepFailure('COPY needs a source and a destination')
  if (c.mode && !/^[0-7]{3,4}$/.test(c.mode)) throw new StepFailure(`invalid mode '${c.mode}'`)
  const url = step.filesHash ? sc.filesUrls[step.filesHash] : undefined
  if (!step.filesHash || !url) throw new StepFailure(`no uploaded files for COPY ${c.src}`)
  const archive = join(sc.work, step.filesHash)
  await download(url, archive, sc.signal)
  const entries = await listArchive(archive)
  const staging = `/.warren-copy-${step.filesHash.slice(0, 16)}`
  const script = copyScript({ ...c, workdir: state.workdir }, entries, {
    staging,
    gzip: isGzip(archive),
  })
  return inSandbox(sc, state, async (sb) => {
    await uploadFile(sb.target, archive, `${staging}.tar`)
    await run(sc, sb, { cmd: script, user: 'root', cwd: '/' }, state)
  })
}

async function download(url: string, to: string, signal: AbortSignal): Promise<void> {
  const res = await fetch(url, { signal })
  if (!res.ok || !res.body)
    throw new WarrenError('internal', `could not fetch the uploaded files (${res.status})`)
  await pipeline(Readable.fromWeb(res.body as never), createWriteStream(to))
}

/** The archive's entries, read (never extracted) on the host. */
async function listArchive(file: string): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = []
  try {
    await list({
      file,
      onReadEntry: (e) => {
        entries.push({ path: e.path, dir: e.type === 'Directory' })
      },
    })
  } catch (err) {
    throw new StepFailure(`the uploaded files are not a tar archive: ${(err as Error).message}`)
  }
  return entries
}

function isGzip(file: string): boolean {
  const fd = openSync(file, 'r')
  try {
    const b = Buffer.alloc(2)
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b
  } finally {
    closeSync(fd)
  }
}

/**
 * Whether the merged view of a stack has a directory at `path`, read as
 * overlayfs would show it (whiteouts, opaque directories) with the image's
 * own symlinks resolved inside the image: a layer's symlink never leads
 * this look onto the host's files.
 */
export function isDirInStack(templatesDir: string, layers: string[], path: string): boolean {
  const view = new ImageView(layers.map((l) => join(templatesDir, l)))
  return view.stat(path)?.st.isDirectory() ?? false
}

/** Hands complete lines to `out`; the rest waits for its newline (or the flush). */
function lineSplitter(out: (line: string) => void) {
  let rest = ''
  return {
    push(text: string) {
      const parts = (rest + text).split('\n')
      rest = parts.pop() ?? ''
      for (const p of parts) out(p.replace(/\r$/, ''))
    },
    flush() {
      if (rest) out(rest)
      rest = ''
    },
  }
}
