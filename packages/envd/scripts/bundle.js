// Produces dist/bundle/: envd as self-contained ESM (entry envd.mjs plus
// lazily loaded chunks), the native addons it needs at runtime under
// node_modules/, and version.json for the orchestrator (which mounts this
// directory read-only into every sandbox at /opt/warren/envd and must not
// import envd code to learn the version).
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist/bundle')
const require = createRequire(join(root, 'package.json'))

const version = /ENVD_VERSION = '([^']+)'/.exec(
  readFileSync(join(root, 'src/version.ts'), 'utf8'),
)?.[1]
if (!version) throw new Error('cannot read ENVD_VERSION from src/version.ts')

const xattrBindings = [
  `@napi-rs/xattr-${process.platform}-${process.arch}-gnu`,
  `@napi-rs/xattr-${process.platform}-${process.arch}-musl`,
]
const native = ['node-pty', ...xattrBindings]

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })

await build({
  entryPoints: { envd: join(root, 'src/main.ts') },
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: native,
  // ws masks byte by byte in JavaScript unless it finds `bufferutil`: ours does it a word at a time.
  alias: { bufferutil: join(root, 'src/util/ws-mask.ts') },
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  // Bundled CommonJS dependencies (busboy, ws) call require() for built-ins.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
})

/** Copies a package's runtime files (by relative path) into the bundle's node_modules. */
function copyPackage(name, files) {
  let dir
  try {
    dir = dirname(require.resolve(`${name}/package.json`))
  } catch {
    return false
  }
  const dest = join(out, 'node_modules', name)
  for (const f of ['package.json', ...files])
    cpSync(join(dir, f), join(dest, f), { recursive: true })
  return true
}

copyPackage('node-pty', [
  'lib/index.js',
  'lib/terminal.js',
  'lib/unixTerminal.js',
  'lib/utils.js',
  'lib/eventEmitter2.js',
  'build/Release/pty.node',
])
let haveXattr = false
for (const name of xattrBindings) {
  let main
  try {
    main = JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')).main
  } catch {
    continue // the other libc's build is not installed
  }
  haveXattr = copyPackage(name, [main]) || haveXattr
}
if (!haveXattr) throw new Error('no @napi-rs/xattr binding for this platform')

writeFileSync(join(out, 'version.json'), `${JSON.stringify({ version })}\n`)
console.log(`envd ${version} bundled into ${out}`)
