// `npm run bench -- <name> [options] [--json]` runs bench/<name>.ts (through
// tsx, in a process of its own) with the options after the name; without a
// name it lists the benchmarks, each with the first line of its header and
// its usage line. With --json a benchmark's last stdout line is one JSON
// object of its headline figures and ratios (bench/lib/report.ts).
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { constants } from 'node:os'
import { join } from 'node:path'

const DIR = import.meta.dirname

const names = readdirSync(DIR)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -'.ts'.length))
  .sort()

/** The leading `//` comment of a benchmark: its summary line and its usage line. */
function header(name: string): { summary: string; usage: string | undefined } {
  const lines = readFileSync(join(DIR, `${name}.ts`), 'utf8').split('\n')
  const comment = lines.slice(
    0,
    lines.findIndex((l) => !l.startsWith('//')),
  )
  const text = comment.map((l) => l.replace(/^\/\/\s?/, ''))
  return {
    summary: text[0] ?? '',
    usage: text.find((l) => l.trim().startsWith('npm run bench --'))?.trim(),
  }
}

function list(out: NodeJS.WriteStream): void {
  out.write('usage: npm run bench -- <name> [options] [--json]\n\n')
  const width = Math.max(...names.map((n) => n.length))
  for (const name of names) {
    const { summary, usage } = header(name)
    out.write(`  ${name.padEnd(width)}  ${summary}\n`)
    if (usage) out.write(`  ${''.padEnd(width)}    ${usage}\n`)
  }
}

const [name, ...args] = process.argv.slice(2)
if (name === undefined || name === '--help' || name === '-h') {
  list(process.stdout)
} else if (!names.includes(name)) {
  process.stderr.write(`no benchmark '${name}'\n\n`)
  list(process.stderr)
  process.exitCode = 2
} else {
  const child = spawn(process.execPath, ['--import', 'tsx', join(DIR, `${name}.ts`), ...args], {
    stdio: 'inherit',
  })
  // Ctrl-C reaches the benchmark too (same process group), which tears down
  // what it started; this process waits for it and exits as it did.
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => child.kill('SIGTERM'))
  child.on('exit', (code, signal) => {
    process.exit(code ?? (signal ? 128 + constants.signals[signal] : 1))
  })
}
