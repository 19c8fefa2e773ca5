import { spawn } from 'node:child_process'
import { PassThrough, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CommandError } from '../exec.js'

// A layer's tree as it is: numeric owners (shifted uids), modes, device
// nodes (overlay's whiteouts are 0/0 character devices), hard links and
// overlay's trusted.* xattrs (opaque directories). Sockets are skipped.
const FLAGS = ['--numeric-owner', '--xattrs', '--xattrs-include=trusted.*', '--acls']

/**
 * Streams a directory as a tar archive into `sink` (which consumes the
 * stream, e.g. BundleStore.put); rejects if tar fails, whatever the sink did.
 */
export async function packDir<T>(dir: string, sink: (tar: Readable) => Promise<T>): Promise<T> {
  const child = spawn('tar', [...FLAGS, '-C', dir, '-cf', '-', '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const done = exited(child, `tar -c ${dir}`)
  // Read at once: Node discards what a child wrote to a pipe nobody reads
  // yet when the child exits (a small layer is done before the sink starts).
  const out = child.stdout.pipe(new PassThrough())
  try {
    const result = await sink(out)
    await done
    return result
  } catch (err) {
    child.kill('SIGKILL')
    await done.catch(() => {})
    throw err
  }
}

/** Extracts a tar stream into an existing directory, owners and modes as archived. */
export async function unpackInto(tar: Readable, dir: string): Promise<void> {
  const child = spawn(
    'tar',
    [...FLAGS, '--same-permissions', '--same-owner', '-C', dir, '-xf', '-'],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  )
  const done = exited(child, `tar -x ${dir}`)
  // tar may exit at the end-of-archive marker without reading the record's
  // padding: its stdin then closes early, which is no error of the archive.
  const fed = pipeline(tar, child.stdin).then(
    () => undefined,
    (err: unknown) => err,
  )
  try {
    await done
  } catch (err) {
    tar.destroy()
    throw err
  }
  await fed
}

function exited(child: ReturnType<typeof spawn>, what: string): Promise<void> {
  const err: Buffer[] = []
  child.stderr?.on('data', (b: Buffer) => err.push(b))
  return new Promise((resolve, reject) => {
    child.once('error', (e) => reject(new CommandError(what, null, e.message)))
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new CommandError(what, code, Buffer.concat(err).toString())),
    )
  })
}
