// copyScript's Docker COPY rules, run for real: a context archived as the
// SDK uploads it, the script run by sh against a scratch root, the result
// read back. Owner and group are this process's own, so no root is needed.
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { create, list } from 'tar'
import { afterAll, describe, expect, it } from 'vitest'
import { type ArchiveEntry, copyScript } from './copy-plan.js'

const scratch = mkdtempSync(join(tmpdir(), 'warren-copy-plan-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** The build context: app/ (with modes and a subdirectory) and a single file. */
function context(dir: string): void {
  mkdirSync(join(dir, 'app', 'sub'), { recursive: true })
  writeFileSync(join(dir, 'app', 'index.html'), 'index\n')
  writeFileSync(join(dir, 'app', 'run.sh'), '#!/bin/sh\n')
  chmodSync(join(dir, 'app', 'run.sh'), 0o755)
  writeFileSync(join(dir, 'app', 'sub', 'nested.txt'), 'nested\n')
  writeFileSync(join(dir, 'notes.txt'), 'notes\n')
}

/** Every entry below `root`: `path mode` (files) or `path/` (directories). */
function tree(root: string, rel = ''): string[] {
  return readdirSync(join(root, rel))
    .sort()
    .flatMap((name) => {
      const path = rel ? `${rel}/${name}` : name
      const st = lstatSync(join(root, path))
      if (st.isDirectory()) return [`${path}/`, ...tree(root, path)]
      return [`${path} ${(st.mode & 0o777).toString(8)}`]
    })
}

let n = 0
/** Archives `srcs` of a fresh context as the SDK would, runs the COPY, returns the new root. */
async function runCopy(
  srcs: string[],
  src: string,
  dest: string,
  opts: {
    mode?: string
    gzip?: boolean
    before?: (root: string) => void
    files?: Record<string, string>
  } = {},
): Promise<string[]> {
  const dir = join(scratch, String(n++))
  const ctx = join(dir, 'ctx')
  const root = join(dir, 'root')
  mkdirSync(ctx, { recursive: true })
  mkdirSync(join(root, 'work'), { recursive: true })
  context(ctx)
  for (const [name, body] of Object.entries(opts.files ?? {})) writeFileSync(join(ctx, name), body)
  opts.before?.(root)
  const staging = join(dir, 'staging')
  await create({ file: `${staging}.tar`, cwd: ctx, gzip: opts.gzip ?? false }, srcs)
  const entries: ArchiveEntry[] = []
  await list({
    file: `${staging}.tar`,
    onReadEntry: (e) => {
      entries.push({ path: e.path, dir: e.type === 'Directory' })
    },
  })
  const { username } = userInfo()
  const script = copyScript(
    { src, dest, owner: username, mode: opts.mode ?? '', workdir: join(root, 'work') },
    entries,
    { staging, gzip: opts.gzip ?? false },
  )
  // In `dir`: a command substitution that ran would leave a file there.
  execFileSync('sh', ['-c', script], { cwd: dir })
  return tree(root)
}

describe('copyScript (Docker COPY rules, run by sh)', () => {
  it.each<[string, string[], string, string, Parameters<typeof runCopy>[3], string[]]>([
    [
      "a directory's contents go into the destination",
      ['app'],
      'app',
      '/ROOT/opt/app',
      {},
      [
        'opt/',
        'opt/app/',
        'opt/app/index.html 644',
        'opt/app/run.sh 755',
        'opt/app/sub/',
        'opt/app/sub/nested.txt 644',
        'work/',
      ],
    ],
    [
      'a file into a directory named with a trailing slash',
      ['notes.txt'],
      'notes.txt',
      '/ROOT/notes/',
      {},
      ['notes/', 'notes/notes.txt 644', 'work/'],
    ],
    [
      'a file becomes the destination, relative to the working directory',
      ['notes.txt'],
      './notes.txt',
      'renamed.txt',
      { gzip: true },
      ['work/', 'work/renamed.txt 644'],
    ],
    [
      'a file goes into an existing directory',
      ['notes.txt'],
      'notes.txt',
      '/ROOT/existing',
      { before: (root) => mkdirSync(join(root, 'existing')) },
      ['existing/', 'existing/notes.txt 644', 'work/'],
    ],
    [
      'a glob with one match copies it as a file',
      ['app'],
      'app/*.html',
      '/ROOT/web',
      {},
      ['web 644', 'work/'],
    ],
    [
      "a glob with several matches: files and matched directories' contents go into it",
      ['app'],
      'app/*',
      '/ROOT/dst',
      {},
      ['dst/', 'dst/index.html 644', 'dst/nested.txt 644', 'dst/run.sh 755', 'work/'],
    ],
    [
      'a mode applies to everything copied',
      ['app'],
      'app',
      '/ROOT/m',
      { mode: '0700' },
      ['m/', 'm/index.html 700', 'm/run.sh 700', 'm/sub/', 'm/sub/nested.txt 700', 'work/'],
    ],
    [
      '. is the whole context',
      ['app', 'notes.txt'],
      '.',
      '/ROOT/all/',
      {},
      [
        'all/',
        'all/app/',
        'all/app/index.html 644',
        'all/app/run.sh 755',
        'all/app/sub/',
        'all/app/sub/nested.txt 644',
        'all/notes.txt 644',
        'work/',
      ],
    ],
  ])('%s', async (_name, srcs, src, dest, opts, want) => {
    const dir = join(scratch, String(n))
    const got = await runCopy(srcs, src, dest.replace('/ROOT', join(dir, 'root')), opts)
    expect(got).toEqual(want)
    // The staging area is gone.
    expect(readdirSync(dir).sort()).toEqual(['ctx', 'root'])
  })

  it('refuses a source that matches nothing', () => {
    expect(() =>
      copyScript(
        { src: 'missing/*', dest: '/x', owner: 'user', mode: '', workdir: '/' },
        [{ path: 'app/', dir: true }],
        { staging: '/s', gzip: false },
      ),
    ).toThrow("no files match 'missing/*'")
  })

  it("names paths literally: quotes and $(…) are not the shell's", async () => {
    const name = "it's $(touch pwned).txt"
    const dir = join(scratch, String(n))
    const dest = join(dir, 'root', "a b$(touch pwned)'")
    const got = await runCopy([name], name, `${dest}/`, { files: { [name]: 'x' } })
    expect(got).toEqual(["a b$(touch pwned)'/", `a b$(touch pwned)'/${name} 644`, 'work/'])
    expect(readdirSync(dir).sort()).toEqual(['ctx', 'root'])
  })
})
