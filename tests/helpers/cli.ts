// The `warren` CLI as a child process, pointed at a fixture.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import type { WarrenFixture } from './warren-fixture.js'

export const CLI = join(import.meta.dirname, '../../packages/cli/dist/main.js')

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Flags that point a CLI command at the fixture's API and proxy. */
export function connectionFlags(w: WarrenFixture): string[] {
  return ['--api-url', w.apiUrl, '--sandbox-url', w.proxyUrl, '--api-key', w.apiKey]
}

/**
 * Runs `warren <args>` to completion with the fixture's WARREN_* environment
 * (its data directory, so `keys` commands reach its store). Killed after `timeoutMs`.
 */
export function runCli(w: WarrenFixture, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...w.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** Runs a CLI command that must succeed and print JSON; returns the parsed output. */
export async function runCliJson(w: WarrenFixture, args: string[]): Promise<unknown> {
  const r = await runCli(w, args)
  if (r.code !== 0) throw new Error(`warren ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return JSON.parse(r.stdout)
}
